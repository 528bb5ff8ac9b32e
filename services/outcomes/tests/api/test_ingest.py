"""IngestMeasurements and enrolments over a real server, with real tokens and the real
identity service deciding every patient."""

from __future__ import annotations

import time

import grpc
import pytest
from sqlalchemy import text

from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes.deps import Deps
from testkit.fixtures import IdentityService, Tokens
from testkit.rpc import failure

from .support import big_batch, chunks, enrolment_request, register_patients, row


@pytest.fixture(scope="module")
def patients(
    identity_service: IdentityService,
    stub: rpc_grpc.OutcomesServiceStub,
    tokens: Tokens,
    jansen: tuple[tuple[str, str]],
) -> list[str]:
    ids = register_patients(identity_service, tokens.user("dr.jansen"), "ing", 100)
    reply = stub.BatchCreateEnrolments(
        rpc.BatchCreateEnrolmentsRequest(requests=[enrolment_request(p) for p in ids]),
        metadata=jansen,
        timeout=30,
    )
    assert [r.rejection_reason for r in reply.results] == [""] * 100
    return ids


def _count(deps: Deps, like: str) -> int:
    with deps.uow() as uow:
        return int(
            uow.session.execute(
                text("SELECT COUNT(*) FROM measurements WHERE source_record_id LIKE :p"),
                {"p": like},
            ).scalar_one()
        )


def test_a_practice_enrols_its_own_patient(
    stub: rpc_grpc.OutcomesServiceStub, jansen: tuple[tuple[str, str]]
) -> None:
    enrolment = stub.CreateEnrolment(enrolment_request("p-0001"), metadata=jansen, timeout=10)
    assert enrolment.name == "patients/p-0001/enrolments/dm2"
    listed = stub.ListEnrolments(
        rpc.ListEnrolmentsRequest(parent="patients/p-0001"), metadata=jansen, timeout=10
    )
    assert [e.name for e in listed.enrolments] == ["patients/p-0001/enrolments/dm2"]


def test_an_invalid_enrolment_names_its_fields(
    stub: rpc_grpc.OutcomesServiceStub, jansen: tuple[tuple[str, str]]
) -> None:
    request = enrolment_request("p-0001")
    request.enrolment.practice_agb = "123"
    request.enrolment.birth_year = 1800
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateEnrolment(request, metadata=jansen, timeout=10)
    fail = failure(caught.value)
    assert fail.code == grpc.StatusCode.INVALID_ARGUMENT and fail.error_infos == 1
    assert set(fail.field_violations) == {"enrolment.practice_agb", "enrolment.birth_year"}


def test_rows_of_patients_identity_denies_are_rejected_alone(
    stub: rpc_grpc.OutcomesServiceStub, jansen: tuple[tuple[str, str]], patients: list[str]
) -> None:
    rows = [row(patients[0], "deny-ok"), row("p-0003", "deny-1"), row("p-nobody", "deny-2")]
    reply = stub.IngestMeasurements(
        iter([rpc.IngestMeasurementsRequest(rows=rows)]), metadata=jansen, timeout=30
    )
    assert reply.accepted == 1
    assert [(r.row, r.reason) for r in reply.results] == [
        (1, "NO_CARE_RELATIONSHIP"),
        (2, "NO_CARE_RELATIONSHIP"),
    ]


def test_a_batch_of_100000_rows_with_one_percent_bad_stores_every_good_row_once(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: tuple[tuple[str, str]],
    patients: list[str],
    deps: Deps,
) -> None:
    rows, bad = big_batch(patients, 100_000, "big")
    started = time.perf_counter()
    reply = stub.IngestMeasurements(chunks(rows), metadata=jansen, timeout=300)
    elapsed = time.perf_counter() - started
    assert (reply.accepted, reply.duplicates, reply.rejected) == (100_000 - len(bad), 0, len(bad))
    assert {r.row for r in reply.results} == bad
    assert {r.reason for r in reply.results} == {
        "UNKNOWN_CODE",
        "OUT_OF_RANGE",
        "WRONG_UNIT",
        "FUTURE_TIME",
    }
    assert all(r.outcome == rpc.ROW_OUTCOME_REJECTED for r in reply.results)
    assert _count(deps, "big-%") == 100_000 - len(bad)

    again = stub.IngestMeasurements(chunks(rows), metadata=jansen, timeout=300)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 100_000 - len(bad), len(bad))
    assert _count(deps, "big-%") == 100_000 - len(bad)
    assert elapsed < 60

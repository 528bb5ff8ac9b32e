"""What a measurement RPC logs at identity is the access that happened (issue 11, points 1,
5 and 6), over a real outcomes server, the real identity service and real tokens: a patient
signed in through a professional client reaches no measurement RPC, a row rejected before
anything is created leaves no create entry, a source record id is the record holder's own,
and a read is one entry per record holder it reaches for (one, when the refusal is the same
for every holder)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from sqlalchemy import Engine, text

from carenet.identity.v1 import identity_pb2 as ipb
from carenet.identity.v1 import identity_service_pb2 as irpc
from carenet.identity.v1 import identity_service_pb2_grpc as irpc_grpc
from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes.deps import Deps
from servicekit.identity_client import (
    Access,
    AccessDecision,
    AccessQuestion,
    BatchAccessQuestion,
    IdentityClient,
)
from testkit.access_log import AccessLogReader
from testkit.fixtures import IdentityService, Tokens, bearer
from testkit.rpc import failure

from .support import Metadata, enrol, enrolment_request, ingest, register_patients, row

Entry = tuple[str, ...]  # patient, organisation, action, decision, reason


def _list(stub: rpc_grpc.OutcomesServiceStub, who: Metadata, patient: str) -> list[Any]:
    reply = stub.ListMeasurements(
        rpc.ListMeasurementsRequest(parent=f"patients/{patient}"), metadata=who, timeout=10
    )
    return list(reply.measurements)


def _enrol(stub: rpc_grpc.OutcomesServiceStub, who: Metadata, patient: str, practice: str) -> None:
    agb = {"gp-de-linde": "01012345", "gp-het-anker": "01054321"}[practice]
    enrol(stub, who, patient, practice, agb)


@pytest.fixture(scope="module")
def patients(
    stub: rpc_grpc.OutcomesServiceStub,
    identity_service: IdentityService,
    tokens: Tokens,
    jansen: Metadata,
    devries: Metadata,
) -> tuple[str, str, str]:
    """Two enrolled patients of dr.jansen's practice, the first also treated by the
    hospital, and one of dr.devries's."""
    ours = register_patients(identity_service, tokens.user("dr.jansen"), "one", 2)
    (theirs,) = register_patients(identity_service, tokens.user("dr.devries"), "two", 1)
    with grpc.insecure_channel(identity_service.target) as channel:
        irpc_grpc.IdentityServiceStub(channel).CreateCareRelationship(
            irpc.CreateCareRelationshipRequest(
                parent=f"patients/{ours[0]}",
                care_relationship=ipb.CareRelationship(
                    organisation="organisations/hosp-catharina",
                    kind=ipb.CARE_RELATIONSHIP_KIND_TREATING,
                ),
            ),
            metadata=jansen,
            timeout=10,
        )
    for patient in ours:
        _enrol(stub, jansen, patient, "gp-de-linde")
    _enrol(stub, devries, theirs, "gp-het-anker")
    return ours[0], ours[1], theirs


LAB = pb.MeasurementSource(kind=pb.SOURCE_KIND_LAB, organisation="organisations/lab-eindhoven")


# ------------------------------------------------------------------ patients (rule 5)


def test_a_patient_signed_in_through_the_kis_client_reaches_no_measurement_rpc(
    stub: rpc_grpc.OutcomesServiceStub,
    tokens: Tokens,
    access_log: AccessLogReader,
) -> None:
    """The carenet-kis client's tokens carry the outcomes audience; the patient role is
    refused all the same (ROLE_NOT_PERMITTED), before identity is asked: nothing logged."""
    patient = bearer(tokens.user("pat.yilmaz", "carenet-kis"))  # p-0002
    access_log.mark()
    calls: dict[str, Callable[[], Any]] = {
        "ListMeasurements": lambda: _list(stub, patient, "p-0002"),
        "IngestMeasurements": lambda: ingest(stub, patient, [row("p-0002", "pat-1")]),
        "ListEnrolments": lambda: stub.ListEnrolments(
            rpc.ListEnrolmentsRequest(parent="patients/p-0002"), metadata=patient, timeout=10
        ),
        "CreateEnrolment": lambda: stub.CreateEnrolment(
            enrolment_request("p-0002"), metadata=patient, timeout=10
        ),
    }
    for name, call in calls.items():
        with pytest.raises(grpc.RpcError) as caught:
            call()
        got = failure(caught.value)
        assert (got.code, got.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_NOT_PERMITTED",
        ), name
    assert access_log.entries() == []


# ------------------------------------------------------------------ ingest


def test_a_row_rejected_as_a_source_record_conflict_leaves_no_create_entry(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: Metadata,
    patients: tuple[str, str, str],
    access_log: AccessLogReader,
) -> None:
    first, second, _ = patients
    assert ingest(stub, jansen, [row(first, "conflict-1", 50.0)]).accepted == 1
    access_log.mark()
    # The practice's own record id, sent again for another patient: nothing is created.
    reply = ingest(stub, jansen, [row(second, "conflict-1", 50.0)])
    assert (reply.accepted, reply.rejected) == (0, 1)
    assert [(r.outcome, r.reason, r.field) for r in reply.results] == [
        (rpc.ROW_OUTCOME_REJECTED, "SOURCE_RECORD_CONFLICT", "source_record_id")
    ]
    assert access_log.entries() == []
    # With a new row for the same patient in the call, the create entry is that row's.
    reply = ingest(stub, jansen, [row(second, "conflict-1", 50.0), row(second, "conflict-2", 50.0)])
    assert (reply.accepted, reply.rejected) == (1, 1)
    assert access_log.entries() == [
        (second, "gp-de-linde", "create", "permit", "CARE_RELATIONSHIP")
    ]


def test_a_source_record_id_belongs_to_its_record_holder(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: Metadata,
    devries: Metadata,
    patients: tuple[str, str, str],
) -> None:
    """Another practice's lab record id, for its own patient, is a new measurement of its
    own record: no SOURCE_RECORD_CONFLICT, so nobody learns the other practice's ids, and
    nobody can take them first."""
    mine_patient, _, theirs_patient = patients
    assert ingest(stub, jansen, [row(mine_patient, "lab-shared-1", 48.0, source=LAB)]).accepted == 1
    theirs = ingest(stub, devries, [row(theirs_patient, "lab-shared-1", 70.0, source=LAB)])
    assert (theirs.accepted, theirs.rejected, list(theirs.results)) == (1, 0, [])
    # Each practice's record keeps its own value; a correction is still its holder's.
    fixed = ingest(stub, devries, [row(theirs_patient, "lab-shared-1", 71.0, source=LAB)])
    assert (fixed.accepted, fixed.corrected) == (0, 1)
    again = ingest(stub, jansen, [row(mine_patient, "lab-shared-1", 48.0, source=LAB)])
    assert (again.accepted, again.duplicates) == (0, 1)
    mine = [m for m in _list(stub, jansen, mine_patient) if m.source_record_id == "lab-shared-1"]
    assert [(m.value, m.record_holder) for m in mine] == [(48.0, "organisations/gp-de-linde")]
    theirs_now = [
        m for m in _list(stub, devries, theirs_patient) if m.source_record_id == "lab-shared-1"
    ]
    assert [(m.value, m.record_holder) for m in theirs_now] == [
        (71.0, "organisations/gp-het-anker")
    ]


def test_new_rows_log_one_create_per_patient_and_nothing_else(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: Metadata,
    patients: tuple[str, str, str],
    access_log: AccessLogReader,
) -> None:
    first, second, _ = patients
    access_log.mark()
    reply = ingest(
        stub,
        jansen,
        [
            row(first, "entry-new-1", 50.0),
            row(second, "entry-new-2", 51.0),
            row(first, "entry-new-3", 52.0),
        ],
    )
    assert (reply.accepted, reply.corrected, reply.duplicates) == (3, 0, 0)
    assert access_log.entries() == [
        (first, "gp-de-linde", "create", "permit", "CARE_RELATIONSHIP"),
        (second, "gp-de-linde", "create", "permit", "CARE_RELATIONSHIP"),
    ]


def test_a_correction_only_ingest_logs_one_update_per_patient_and_no_create(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: Metadata,
    patients: tuple[str, str, str],
    access_log: AccessLogReader,
) -> None:
    """Corrections change stored measurements: one UPDATE entry per patient, however many
    rows; a row sent again unchanged in the same call changes nothing and adds nothing."""
    first, second, _ = patients
    stored = [
        row(first, "entry-fix-1", 50.0),
        row(first, "entry-fix-2", 51.0),
        row(second, "entry-fix-3", 52.0),
    ]
    assert ingest(stub, jansen, stored).accepted == 3
    access_log.mark()
    reply = ingest(
        stub,
        jansen,
        [
            row(first, "entry-fix-1", 60.0),
            row(first, "entry-fix-2", 61.0),
            row(second, "entry-fix-3", 52.0),  # unchanged: a duplicate
            row(second, "entry-fix-3", 62.0),
            row(first, "entry-fix-1", 63.0),  # a second correction of the same row
        ],
    )
    assert (reply.accepted, reply.corrected, reply.duplicates, reply.rejected) == (0, 4, 1, 0)
    assert access_log.entries() == [
        (first, "gp-de-linde", "update", "permit", "CARE_RELATIONSHIP"),
        (second, "gp-de-linde", "update", "permit", "CARE_RELATIONSHIP"),
    ]
    values = {
        m.source_record_id: (m.value, [r.value for r in m.revisions])
        for m in _list(stub, jansen, first)
        if m.source_record_id in ("entry-fix-1", "entry-fix-2")
    }
    assert values == {"entry-fix-1": (63.0, [50.0, 60.0]), "entry-fix-2": (61.0, [51.0])}


def test_a_resent_batch_logs_one_read_per_patient_and_no_create(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: Metadata,
    patients: tuple[str, str, str],
    access_log: AccessLogReader,
) -> None:
    """Duplicates create and change nothing; the answer tells the caller what its
    organisation's record of the patient holds, which is a read of it."""
    first, second, _ = patients
    rows = [
        row(first, "entry-again-1", 50.0),
        row(second, "entry-again-2", 51.0),
        row(first, "entry-again-3"),
    ]
    assert ingest(stub, jansen, rows).accepted == 3
    access_log.mark()
    reply = ingest(stub, jansen, rows)
    assert (reply.accepted, reply.duplicates) == (0, 3)
    assert access_log.entries() == [
        (first, "gp-de-linde", "read", "permit", "CARE_RELATIONSHIP"),
        (second, "gp-de-linde", "read", "permit", "CARE_RELATIONSHIP"),
    ]


def test_new_rows_and_corrections_of_one_patient_are_one_create_and_one_update(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: Metadata,
    patients: tuple[str, str, str],
    access_log: AccessLogReader,
) -> None:
    """Two accesses happened (rows added to the record, a stored row changed): one entry
    each. A row created and corrected in the same call is both."""
    first, second, _ = patients
    assert ingest(stub, jansen, [row(first, "entry-mixed-1", 50.0)]).accepted == 1
    access_log.mark()
    reply = ingest(
        stub,
        jansen,
        [
            row(first, "entry-mixed-1", 55.0),
            row(first, "entry-mixed-2", 56.0),
            row(second, "entry-mixed-3", 57.0),
            row(second, "entry-mixed-3", 58.0),
        ],
    )
    assert (reply.accepted, reply.corrected) == (2, 2)
    assert sorted(access_log.entries()) == [
        (first, "gp-de-linde", "create", "permit", "CARE_RELATIONSHIP"),
        (first, "gp-de-linde", "update", "permit", "CARE_RELATIONSHIP"),
        (second, "gp-de-linde", "create", "permit", "CARE_RELATIONSHIP"),
        (second, "gp-de-linde", "update", "permit", "CARE_RELATIONSHIP"),
    ]


class _RaceAfterTheQuestion:
    """identity, with ``race`` run once, after identity answered the first create
    question and before the ingest that asked it writes."""

    def __init__(self, inner: IdentityClient, race: Callable[[], None]) -> None:
        self.inner = inner
        self.race: Callable[[], None] | None = race

    def authorize(self, question: AccessQuestion) -> AccessDecision:
        return self.inner.authorize(question)

    def authorize_many(self, question: BatchAccessQuestion) -> dict[str, AccessDecision]:
        answer = self.inner.authorize_many(question)
        race, self.race = self.race, None
        if race is not None and question.access is Access.CREATE:
            race()
        return answer


def test_an_ingest_racing_for_the_same_record_id_logs_only_the_create_that_happened(
    stub: rpc_grpc.OutcomesServiceStub,
    deps: Deps,
    engine: Engine,
    jansen: Metadata,
    patients: tuple[str, str, str],
    access_log: AccessLogReader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second ingest of the same record holder sends the same record id while the first
    is between identity's answer and its write: one row is written, and one create is
    logged. (The record holder's ingests take turns, so the second finds the first's row
    stored: a duplicate, whose answer is a read of the record.)"""
    first, _, _ = patients
    replies: dict[str, Any] = {}

    def second_ingest() -> None:
        replies["second"] = ingest(stub, jansen, [row(first, "entry-race-1", 50.0)])

    def race() -> None:
        other = threading.Thread(target=second_ingest)
        other.start()
        # Until the second ingest has finished, or waits for the first (its turn).
        deadline = time.monotonic() + 20
        while other.is_alive() and time.monotonic() < deadline:
            with engine.connect() as conn:
                waiting = conn.execute(
                    text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                ).scalar_one()
            if waiting:
                break
            time.sleep(0.02)
        replies["thread"] = other

    monkeypatch.setattr(deps, "identity", _RaceAfterTheQuestion(deps.identity, race))
    access_log.mark()
    replies["first"] = ingest(stub, jansen, [row(first, "entry-race-1", 50.0)])
    replies["thread"].join(30)
    got = [(r.accepted, r.duplicates) for r in (replies["first"], replies["second"])]
    assert sorted(got) == [(0, 1), (1, 0)]
    assert replies["first"].accepted == 1
    assert access_log.entries() == [
        (first, "gp-de-linde", "create", "permit", "CARE_RELATIONSHIP"),
        (first, "gp-de-linde", "read", "permit", "CARE_RELATIONSHIP"),
    ]
    stored = [m for m in _list(stub, jansen, first) if m.source_record_id == "entry-race-1"]
    assert [m.value for m in stored] == [50.0]


# ------------------------------------------------------------------ reads


@pytest.fixture(scope="module")
def two_holders(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: Metadata,
    tokens: Tokens,
    patients: tuple[str, str, str],
) -> str:
    """A patient whose measurements the GP practice and the hospital hold."""
    patient = patients[0]
    smit = bearer(tokens.user("dr.smit"))
    ingest(stub, jansen, [row(patient, "holders-gp-1", 50.0)])
    hospital = pb.MeasurementSource(
        kind=pb.SOURCE_KIND_HOSPITAL, organisation="organisations/hosp-catharina"
    )
    ingest(stub, smit, [row(patient, "holders-hosp-1", 60.0, source=hospital)])
    return patient


def test_a_refusal_that_is_the_same_for_every_holder_is_one_entry(
    stub: rpc_grpc.OutcomesServiceStub,
    devries: Metadata,
    two_holders: str,
    access_log: AccessLogReader,
) -> None:
    """dr.devries's practice has no care relationship with the patient, whose measurements
    two organisations hold: the call reads nothing, and is one DENY."""
    access_log.mark()
    with pytest.raises(grpc.RpcError) as caught:
        _list(stub, devries, two_holders)
    assert failure(caught.value).reason == "NO_CARE_RELATIONSHIP"
    assert access_log.entries() == [
        (two_holders, "gp-het-anker", "read", "deny", "NO_CARE_RELATIONSHIP")
    ]


def test_a_read_is_one_entry_per_record_holder_the_own_record_first(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: Metadata,
    two_holders: str,
    access_log: AccessLogReader,
) -> None:
    """The GP reads its practice's records (PERMIT) and not the hospital's (DENY
    NO_CONSENT): two records, two entries, each saying what happened to that record."""
    access_log.mark()
    got = _list(stub, jansen, two_holders)
    assert {m.record_holder for m in got} == {"organisations/gp-de-linde"}
    assert access_log.entries() == [
        (two_holders, "gp-de-linde", "read", "permit", "CARE_RELATIONSHIP"),
        (two_holders, "gp-de-linde", "read", "deny", "NO_CONSENT"),
    ]

"""Who reads a patient's measurements (issue 11, points 1 and 6), over a real server with
real tokens and the real identity service deciding.

The demo region's consents: p-0001 opened its care plan to hospitals and lifestyle
providers and its referral data to lifestyle providers; p-0002 its care plan to the
municipality. Nobody opened measurements. So the GP practice that holds the measurements
reads them, and the hospital, the lifestyle provider and the municipality (each with a
care relationship) do not, until the patient gives a consent for measurements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from sqlalchemy import create_engine, text

from carenet.identity.v1 import identity_pb2 as ipb
from carenet.identity.v1 import identity_service_pb2 as irpc
from carenet.identity.v1 import identity_service_pb2_grpc as irpc_grpc
from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from testkit.fixtures import IdentityService, Tokens, bearer
from testkit.rpc import Failure, failure

from .support import Metadata, enrolment_request, row, ts

WHEN = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def _ingest(stub: rpc_grpc.OutcomesServiceStub, who: Metadata, rows: list[Any]) -> Any:
    return stub.IngestMeasurements(
        iter([rpc.IngestMeasurementsRequest(rows=rows)]), metadata=who, timeout=30
    )


@pytest.fixture(scope="module")
def held(stub: rpc_grpc.OutcomesServiceStub, jansen: Metadata, tokens: Tokens) -> dict[str, int]:
    """Measurements of p-0001 and p-0002 ingested by dr.jansen's practice (gp-de-linde), as
    the demo's KIS would send them, and of p-0003 by dr.devries's (gp-het-anker)."""
    devries = bearer(tokens.user("dr.devries"))
    counts = {}
    for patient, who, agb, practice in (
        ("p-0001", jansen, "01012345", "gp-de-linde"),
        ("p-0002", jansen, "01012345", "gp-de-linde"),
        ("p-0003", devries, "01054321", "gp-het-anker"),
    ):
        stub.CreateEnrolment(enrolment_request(patient, practice, agb), metadata=who, timeout=10)
        rows = [
            row(patient, f"access-{patient}-hba1c", 52.0),
            row(
                patient,
                f"access-{patient}-sbp",
                135.0,
                code="SBP",
                unit="mm[Hg]",
                source=pb.MeasurementSource(
                    kind=pb.SOURCE_KIND_KIS, organisation=f"organisations/{practice}"
                ),
            ),
        ]
        assert _ingest(stub, who, rows).accepted == 2
        counts[patient] = 2
    return counts


def _list(stub: rpc_grpc.OutcomesServiceStub, who: Metadata, patient: str) -> list[pb.Measurement]:
    reply = stub.ListMeasurements(
        rpc.ListMeasurementsRequest(parent=f"patients/{patient}"), metadata=who, timeout=10
    )
    return list(reply.measurements)


def _refused(call: Callable[[], Any]) -> Failure:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return failure(caught.value)


def _denied(stub: rpc_grpc.OutcomesServiceStub, who: Metadata, patient: str) -> None:
    """Refused for want of the patient's consent (the caller has a care relationship)."""
    fail = _refused(lambda: _list(stub, who, patient))
    assert (fail.code, fail.reason, fail.domain, fail.error_infos) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NO_CONSENT",
        "outcomes.carenet",
        1,
    )


def _log(identity: IdentityService, patient: str) -> list[tuple[str, str, str]]:
    """identity's access-log entries of reads of the patient's measurements: (organisation,
    decision, reason), oldest first."""
    engine = create_engine(identity.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT organisation_id, decision, reason FROM access_log "
                    "WHERE patient_id = :p AND data_category = 'measurements' "
                    "AND action = 'read' ORDER BY id"
                ),
                {"p": patient},
            ).all()
    finally:
        engine.dispose()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def test_the_gp_practice_that_holds_the_measurements_reads_them(
    stub: rpc_grpc.OutcomesServiceStub, jansen: Metadata, held: dict[str, int]
) -> None:
    got = _list(stub, jansen, "p-0001")
    assert {m.source_record_id for m in got} >= {"access-p-0001-hba1c", "access-p-0001-sbp"}
    assert {m.record_holder for m in got} == {"organisations/gp-de-linde"}


def test_a_municipality_officer_does_not_read_p0002_measurements_without_consent(
    stub: rpc_grpc.OutcomesServiceStub, tokens: Tokens, held: dict[str, int]
) -> None:
    _denied(stub, bearer(tokens.user("ambtenaar.mulder")), "p-0002")


@pytest.mark.parametrize("user", ["dr.smit", "coach.degroot"])
def test_the_hospital_and_the_lifestyle_provider_do_not_read_p0001_measurements(
    stub: rpc_grpc.OutcomesServiceStub, tokens: Tokens, held: dict[str, int], user: str
) -> None:
    """Both have a care relationship with p-0001, whose consents cover the care plan and
    referral data only."""
    _denied(stub, bearer(tokens.user(user)), "p-0001")


def test_each_read_asks_identity_once_per_record_holder_and_returns_only_what_it_permits(
    stub: rpc_grpc.OutcomesServiceStub,
    tokens: Tokens,
    identity_service: IdentityService,
    held: dict[str, int],
) -> None:
    """The hospital sends a measurement of its own: it reads that one (its own record) and
    still not the practice's; its read is two decisions, each logged once."""
    smit = bearer(tokens.user("dr.smit"))
    own = row(
        "p-0001",
        "access-hosp-1",
        61.0,
        source=pb.MeasurementSource(
            kind=pb.SOURCE_KIND_HOSPITAL, organisation="organisations/hosp-catharina"
        ),
    )
    assert _ingest(stub, smit, [own]).accepted == 1
    before = _log(identity_service, "p-0001")
    got = _list(stub, smit, "p-0001")
    assert [(m.source_record_id, m.record_holder) for m in got] == [
        ("access-hosp-1", "organisations/hosp-catharina")
    ]
    added = _log(identity_service, "p-0001")[len(before) :]
    assert sorted(added) == [
        ("hosp-catharina", "deny", "NO_CONSENT"),  # the practice's record
        ("hosp-catharina", "permit", "CARE_RELATIONSHIP"),  # its own
    ]
    # The practice still reads both its own measurements, and not the hospital's.
    jansen = bearer(tokens.user("dr.jansen"))
    assert {m.record_holder for m in _list(stub, jansen, "p-0001")} == {"organisations/gp-de-linde"}


def test_a_consent_for_measurements_opens_them_and_withdrawing_it_closes_them_again(
    stub: rpc_grpc.OutcomesServiceStub,
    tokens: Tokens,
    identity_service: IdentityService,
    held: dict[str, int],
) -> None:
    mulder = bearer(tokens.user("ambtenaar.mulder"))
    _denied(stub, mulder, "p-0002")
    patient = bearer(tokens.patient("pat.yilmaz"))
    with grpc.insecure_channel(identity_service.target) as channel:
        identity = irpc_grpc.IdentityServiceStub(channel)
        consent = identity.CreateConsent(
            irpc.CreateConsentRequest(
                parent="patients/p-0002",
                consent=ipb.Consent(
                    record_holder=ipb.OrganisationSelector(
                        category=ipb.ORGANISATION_TYPE_GP_PRACTICE
                    ),
                    data_category=ipb.DATA_CATEGORY_MEASUREMENTS,
                    requester=ipb.OrganisationSelector(category=ipb.ORGANISATION_TYPE_MUNICIPALITY),
                    start_time=ts(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
                ),
            ),
            metadata=patient,
            timeout=10,
        )
        try:
            got = _list(stub, mulder, "p-0002")
            assert {m.source_record_id for m in got} == {
                "access-p-0002-hba1c",
                "access-p-0002-sbp",
            }
        finally:
            identity.WithdrawConsent(
                irpc.WithdrawConsentRequest(name=consent.name, etag=consent.etag),
                metadata=patient,
                timeout=10,
            )
    _denied(stub, mulder, "p-0002")


# ----------------------------------------------------------------- existence (point 6)


def _same_answer(calls: dict[str, Callable[[], Any]]) -> None:
    """Code, message and ErrorInfo (one, reason and domain) are the same for each patient."""
    fails = {patient: _refused(call) for patient, call in calls.items()}
    first, *others = fails.values()
    assert (first.code, first.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NO_CARE_RELATIONSHIP",
    )
    for other in others:
        assert other == first, fails


INVISIBLE = ("p-0003", "p-nobody")  # exists (dr.devries's patient, with measurements); does not


def test_an_invisible_patient_and_one_who_does_not_exist_get_the_same_error_on_every_rpc(
    stub: rpc_grpc.OutcomesServiceStub, jansen: Metadata, held: dict[str, int]
) -> None:
    def create(p: str) -> Callable[[], Any]:
        return lambda: stub.CreateEnrolment(enrolment_request(p), metadata=jansen, timeout=10)

    def enrolments(p: str) -> Callable[[], Any]:
        return lambda: stub.ListEnrolments(
            rpc.ListEnrolmentsRequest(parent=f"patients/{p}"), metadata=jansen, timeout=10
        )

    def measurements(p: str) -> Callable[[], Any]:
        return lambda: _list(stub, jansen, p)

    for call in (create, enrolments, measurements):
        _same_answer({p: call(p) for p in INVISIBLE})
    batch = stub.BatchCreateEnrolments(
        rpc.BatchCreateEnrolmentsRequest(requests=[enrolment_request(p) for p in INVISIBLE]),
        metadata=jansen,
        timeout=10,
    )
    assert [r.rejection_reason for r in batch.results] == ["NO_CARE_RELATIONSHIP"] * 2
    ingested = _ingest(stub, jansen, [row(p, f"exist-{p}") for p in INVISIBLE])
    assert [(r.row, r.outcome, r.reason, r.field) for r in ingested.results] == [
        (n, rpc.ROW_OUTCOME_REJECTED, "NO_CARE_RELATIONSHIP", "patient") for n in (0, 1)
    ]


def test_a_correction_over_the_api_keeps_the_old_value_and_is_logged_as_an_update(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: Metadata,
    identity_service: IdentityService,
    held: dict[str, int],
) -> None:
    first = _ingest(stub, jansen, [row("p-0002", "access-fix-1", 61.0)])
    assert first.accepted == 1
    again = _ingest(stub, jansen, [row("p-0002", "access-fix-1", 52.0)])
    assert (again.accepted, again.duplicates, again.corrected) == (0, 0, 1)
    assert [(r.row, r.outcome) for r in again.results] == [(0, rpc.ROW_OUTCOME_CORRECTED)]
    (fixed,) = [m for m in _list(stub, jansen, "p-0002") if m.source_record_id == "access-fix-1"]
    assert fixed.value == 52.0
    assert [r.value for r in fixed.revisions] == [61.0]
    assert fixed.revisions[0].replace_time == fixed.create_time
    engine = create_engine(identity_service.database_url)
    try:
        with engine.connect() as conn:
            updates = conn.execute(
                text(
                    "SELECT decision FROM access_log WHERE patient_id = 'p-0002' "
                    "AND data_category = 'measurements' AND action = 'update'"
                )
            ).all()
    finally:
        engine.dispose()
    assert [u[0] for u in updates] == ["permit"]

"""What an ingest logs at identity for a patient who is not enrolled (issue 11, points 5 and
6), over a real outcomes server, the real identity service and real tokens: a row that
cannot be created because its patient is not enrolled leaves no create entry, and a caller
identity refuses gets the same answer whether the patient is enrolled, not enrolled or
unknown (checking enrolment before asking identity tells them apart for nobody)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from testkit.access_log import AccessLogReader, open_access_log
from testkit.fixtures import IdentityService, Tokens

from .support import Metadata, enrol, enrolment_request, ingest, register_patients, row


@pytest.fixture
def access_log(identity_service: IdentityService) -> Iterator[AccessLogReader]:
    """identity's access log with each entry's purpose (what the caller was told about)."""
    with open_access_log(
        identity_service.database_url,
        ("patient_id", "organisation_id", "action", "purpose", "decision", "reason"),
    ) as log:
        yield log


@pytest.fixture(scope="module")
def patients(
    stub: rpc_grpc.OutcomesServiceStub,
    identity_service: IdentityService,
    tokens: Tokens,
    jansen: Metadata,
) -> tuple[str, str, str]:
    """Three patients of dr.jansen's practice (a care relationship each): the first
    enrolled, the other two not."""
    ids = register_patients(identity_service, tokens.user("dr.jansen"), "enrl", 3)
    enrol(stub, jansen, ids[0])
    return ids[0], ids[1], ids[2]


def _results(reply: rpc.IngestMeasurementsResponse) -> list[tuple[int, int, str, str]]:
    return [(r.row, r.outcome, r.reason, r.field) for r in reply.results]


def test_rows_of_a_patient_not_enrolled_log_a_read_and_no_create(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: Metadata,
    patients: tuple[str, str, str],
    access_log: AccessLogReader,
) -> None:
    """Nothing is created for a patient who is not enrolled, so identity logs no create:
    the answer NOT_ENROLLED tells the caller what is held about the patient, which is a
    read (the question ListEnrolments asks for a patient without enrolments), one entry
    however many rows. The enrolled patient of the same call gets its create."""
    enrolled, not_enrolled, _ = patients
    access_log.mark()
    reply = ingest(
        stub,
        jansen,
        [
            row(not_enrolled, "enrl-a-1", 50.0),
            row(enrolled, "enrl-a-2", 51.0),
            row(not_enrolled, "enrl-a-3", 52.0),
        ],
    )
    assert (reply.accepted, reply.rejected) == (1, 2)
    assert _results(reply) == [
        (0, rpc.ROW_OUTCOME_REJECTED, "NOT_ENROLLED", "patient"),
        (2, rpc.ROW_OUTCOME_REJECTED, "NOT_ENROLLED", "patient"),
    ]
    assert access_log.entries() == [
        (enrolled, "gp-de-linde", "create", "measurements", "permit", "CARE_RELATIONSHIP"),
        (not_enrolled, "gp-de-linde", "read", "enrolments", "permit", "CARE_RELATIONSHIP"),
    ]


def test_once_enrolled_the_same_rows_are_created_and_logged_as_a_create(
    stub: rpc_grpc.OutcomesServiceStub,
    jansen: Metadata,
    patients: tuple[str, str, str],
    access_log: AccessLogReader,
) -> None:
    _, _, later = patients
    rows = [row(later, "enrl-b-1", 50.0), row(later, "enrl-b-2", 51.0)]
    access_log.mark()
    refused = ingest(stub, jansen, rows)
    assert (refused.accepted, refused.rejected) == (0, 2)
    assert {r.reason for r in refused.results} == {"NOT_ENROLLED"}
    assert access_log.entries() == [
        (later, "gp-de-linde", "read", "enrolments", "permit", "CARE_RELATIONSHIP")
    ]
    stub.CreateEnrolment(enrolment_request(later), metadata=jansen, timeout=10)
    access_log.mark()
    created = ingest(stub, jansen, rows)
    assert (created.accepted, created.rejected) == (2, 0)
    assert access_log.entries() == [
        (later, "gp-de-linde", "create", "measurements", "permit", "CARE_RELATIONSHIP")
    ]


def test_a_caller_identity_refuses_learns_nothing_of_enrolment_or_existence(
    stub: rpc_grpc.OutcomesServiceStub,
    devries: Metadata,
    patients: tuple[str, str, str],
    access_log: AccessLogReader,
) -> None:
    """dr.devries's practice has no care relationship with these patients: an enrolled
    patient, one not enrolled and one that does not exist give the same row result
    (identity's NO_CARE_RELATIONSHIP), never NOT_ENROLLED, and each leaves one DENY and
    no PERMIT. Answering NOT_ENROLLED without asking identity would tell them apart."""
    enrolled, not_enrolled, _ = patients
    nobody = "enrl-nobody"
    access_log.mark()
    reply = ingest(
        stub,
        devries,
        [
            row(enrolled, "enrl-c-1", 50.0),
            row(not_enrolled, "enrl-c-2", 50.0),
            row(nobody, "enrl-c-3", 50.0),
        ],
    )
    assert (reply.accepted, reply.rejected) == (0, 3)
    assert [(r.outcome, r.reason, r.field) for r in reply.results] == [
        (rpc.ROW_OUTCOME_REJECTED, "NO_CARE_RELATIONSHIP", "patient")
    ] * 3
    # One DENY each, and none says more than the row result: the enrolled patient's create
    # was refused, the others' read of their enrolments.
    assert access_log.entries() == [
        (enrolled, "gp-het-anker", "create", "measurements", "deny", "NO_CARE_RELATIONSHIP"),
        (not_enrolled, "gp-het-anker", "read", "enrolments", "deny", "NO_CARE_RELATIONSHIP"),
        (nobody, "gp-het-anker", "read", "enrolments", "deny", "NO_CARE_RELATIONSHIP"),
    ]

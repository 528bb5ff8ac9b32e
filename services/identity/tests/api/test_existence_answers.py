"""Answers that must not tell whether a patient or a relationship exists (issue 11, rule 7,
security review of the running platform): a patient id chosen by the client, and ending a
care relationship the patient does not have."""

from __future__ import annotations

import uuid

import grpc

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.use_cases.deps import Deps
from testkit.fixtures import Tokens, bearer

from .calls import fails, user_id
from .test_measurements_record_holder import _new_bsn

Stub = rpc_grpc.IdentityServiceStub


def _newest(
    stub: Stub, tokens: Tokens, patient: str = "", count: int = 2
) -> list[pb.AccessLogEntry]:
    return list(
        stub.ListAccessLogEntries(
            rpc.ListAccessLogEntriesRequest(
                patient=patient, order_by="event_time desc", page_size=count
            ),
            metadata=bearer(tokens.user("auditor.dekker")),
            timeout=5,
        ).access_log_entries
    )


def test_a_clinician_may_not_choose_a_patient_id_taken_or_free_alike(
    stub: Stub, tokens: Tokens, deps: Deps
) -> None:
    """Before: a taken id answered ALREADY_EXISTS PATIENT_ID_TAKEN and a free one created a
    patient, so the id told whether a patient exists. Now both are refused alike, before
    anything is looked up, and nothing is created."""
    for username in ("dr.jansen", "dr.smit"):
        caller = bearer(tokens.user(username))
        free = f"p-free-{uuid.uuid4().hex[:10]}"
        taken = fails(
            stub.RegisterPatient,
            rpc.RegisterPatientRequest(bsn=_new_bsn(), patient_id="p-0001"),
            caller,
        )
        unused = fails(
            stub.RegisterPatient,
            rpc.RegisterPatientRequest(bsn=_new_bsn(), patient_id=free),
            caller,
        )
        assert (taken.code, taken.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "PATIENT_ID_NOT_PERMITTED",
        )
        assert unused == taken
        with deps.uow() as uow:
            assert uow.repo.patient(free) is None


def test_the_server_assigns_an_unguessable_id(stub: Stub, tokens: Tokens) -> None:
    name = stub.RegisterPatient(
        rpc.RegisterPatientRequest(bsn=_new_bsn()),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=5,
    ).name
    patient_id = name.removeprefix("patients/")
    assert len(patient_id) == 32
    int(patient_id, 16)  # 128 random bits, hex


def test_the_care_groups_admin_chooses_ids_and_a_taken_one_is_logged(
    stub: Stub, tokens: Tokens
) -> None:
    admin = bearer(tokens.user("admin.zuidoost"))
    chosen = f"p-prov-{uuid.uuid4().hex[:10]}"
    created = stub.RegisterPatient(
        rpc.RegisterPatientRequest(bsn=_new_bsn(), patient_id=chosen), metadata=admin, timeout=5
    )
    assert created.name == f"patients/{chosen}"
    taken = fails(
        stub.RegisterPatient, rpc.RegisterPatientRequest(bsn=_new_bsn(), patient_id=chosen), admin
    )
    assert (taken.code, taken.reason) == (grpc.StatusCode.ALREADY_EXISTS, "PATIENT_ID_TAKEN")
    # The refused registration is in the care group's log (of no one patient).
    refused = next(e for e in _newest(stub, tokens, count=5) if e.event == "REGISTER_PATIENT")
    assert (refused.decision, refused.reason, refused.user, refused.patient) == (
        pb.DECISION_DENY,
        "PATIENT_ID_TAKEN",
        user_id("admin.zuidoost"),
        "",
    )


def test_ending_a_relationship_the_patient_does_not_have_answers_like_an_unknown_patient(
    stub: Stub, tokens: Tokens
) -> None:
    """Before: the admin got NOT_FOUND CARE_RELATIONSHIP_NOT_FOUND (unlogged) for p-0003, and
    PERMISSION_DENIED NOT_RELATIONSHIP_MANAGER for a patient that does not exist."""
    for username, patient in (("admin.zuidoost", "p-0003"), ("dr.devries", "p-0003")):
        caller = bearer(tokens.user(username))
        missing = fails(
            stub.EndCareRelationship,
            rpc.EndCareRelationshipRequest(name=f"patients/{patient}/careRelationships/x"),
            caller,
        )
        unknown = fails(
            stub.EndCareRelationship,
            rpc.EndCareRelationshipRequest(name="patients/p-9998/careRelationships/x"),
            caller,
        )
        assert (missing.code, missing.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "NOT_RELATIONSHIP_MANAGER",
        )
        assert missing == unknown
        logged = _newest(stub, tokens, f"patients/{patient}")[1]
        assert (logged.event, logged.decision, logged.reason, logged.user) == (
            "END_CARE_RELATIONSHIP",
            pb.DECISION_DENY,
            "NOT_RELATIONSHIP_MANAGER",
            user_id(username),
        )

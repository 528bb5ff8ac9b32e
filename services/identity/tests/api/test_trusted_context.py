"""Context that widens access is believed only from the service that owns the fact: a referral
context only from the referral service's account. Emergency access only for clinicians with
a real reason, and flagged where the patient and the auditor read the log."""

from __future__ import annotations

import grpc
import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer

from .calls import fails, subject_of_user

Stub = rpc_grpc.IdentityServiceStub
MADE_UP = rpc.ReferralContext(
    referral="patients/p-0003/referrals/made-up",
    target_organisation="organisations/gli-beweegfit",
    referrer_organisation="organisations/gp-het-anker",
)


def _referral_question(**extra: object) -> rpc.AuthorizeRequest:
    return rpc.AuthorizeRequest(
        patient="patients/p-0003",
        data_category=pb.DATA_CATEGORY_REFERRAL,
        action=pb.ACTION_READ,
        referral_context=MADE_UP,
        **extra,  # type: ignore[arg-type]
    )


def test_an_end_user_sending_a_referral_context_is_refused(stub: Stub, tokens: Tokens) -> None:
    """coach.degroot's made-up context got PERMIT / BASIS_REFERRAL_TARGET (issue 11, point 3)."""
    fail = fails(stub.Authorize, _referral_question(), bearer(tokens.user("coach.degroot")))
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "CONTEXT_NOT_TRUSTED")


@pytest.mark.parametrize("service", ["svc-careplan", "svc-outcomes"])
def test_another_service_cannot_vouch_for_a_referral_either(
    stub: Stub, tokens: Tokens, service: str
) -> None:
    request = _referral_question(subject=subject_of_user("coach.degroot"))
    fail = fails(stub.Authorize, request, bearer(tokens.client(service)))
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "CONTEXT_NOT_TRUSTED")


def test_the_referral_services_context_still_opens_the_referral_to_its_target(
    stub: Stub, tokens: Tokens
) -> None:
    request = _referral_question(subject=subject_of_user("coach.degroot"))
    reply = stub.Authorize(request, metadata=bearer(tokens.client("svc-referral")), timeout=5)
    assert (reply.decision, reply.basis) == (pb.DECISION_PERMIT, pb.BASIS_REFERRAL_TARGET)
    # Without the context the same question is denied: it is the context that permits.
    without = rpc.AuthorizeRequest(
        patient="patients/p-0003",
        data_category=pb.DATA_CATEGORY_REFERRAL,
        action=pb.ACTION_READ,
        subject=subject_of_user("coach.degroot"),
    )
    reply = stub.Authorize(without, metadata=bearer(tokens.client("svc-referral")), timeout=5)
    assert reply.decision == pb.DECISION_DENY


def _emergency(
    reason: str, patient: str = "p-0002", holder: str = "gp-de-linde"
) -> rpc.AuthorizeRequest:
    return rpc.AuthorizeRequest(
        patient=f"patients/{patient}",
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        record_holder=f"organisations/{holder}",
        emergency_reason=reason,
    )


@pytest.mark.parametrize("reason", ["urgent", "x x x x x x x x x x", "emergency emergency!!"])
def test_a_clinician_without_a_real_reason_gets_no_emergency_access(
    stub: Stub, tokens: Tokens, reason: str
) -> None:
    reply = stub.Authorize(_emergency(reason), metadata=bearer(tokens.user("dr.smit")), timeout=5)
    assert (reply.decision, reply.reason, reply.emergency) == (
        pb.DECISION_DENY,
        "EMERGENCY_REASON_INSUFFICIENT",
        False,
    )


@pytest.mark.parametrize("username", ["coach.degroot", "ambtenaar.mulder", "coach.visser"])
def test_a_role_other_than_a_clinician_gets_no_emergency_access(
    stub: Stub, tokens: Tokens, username: str
) -> None:
    # p-0003 gave none of them a basis: only the emergency could permit.
    request = _emergency(
        "unconscious-patient: admitted unconscious at the emergency department",
        "p-0003",
        "gp-het-anker",
    )
    reply = stub.Authorize(request, metadata=bearer(tokens.user(username)), timeout=5)
    assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "EMERGENCY_NOT_PERMITTED")


def _find(stub: Stub, metadata: object, name: str) -> pb.AccessLogEntry:
    token = ""
    while True:
        page = stub.ListAccessLogEntries(
            rpc.ListAccessLogEntriesRequest(
                patient="patients/p-0002", page_size=500, page_token=token
            ),
            metadata=metadata,  # type: ignore[arg-type]
            timeout=10,
        )
        for entry in page.access_log_entries:
            if entry.name == name:
                return entry
        token = page.next_page_token
        if not token:
            raise AssertionError(f"{name} not in the log")


def test_an_emergency_access_is_flagged_where_the_patient_and_the_auditor_read_the_log(
    stub: Stub, tokens: Tokens
) -> None:
    reason = "unconscious-patient: admitted unconscious at the emergency department"
    reply = stub.Authorize(_emergency(reason), metadata=bearer(tokens.user("dr.smit")), timeout=5)
    assert (reply.decision, reply.basis, reply.emergency) == (
        pb.DECISION_PERMIT,
        pb.BASIS_EMERGENCY,
        True,
    )
    for reader in (bearer(tokens.patient("pat.yilmaz")), bearer(tokens.user("auditor.dekker"))):
        entry = _find(stub, reader, reply.access_log_entry)
        assert entry.emergency is True
        assert entry.basis == pb.BASIS_EMERGENCY
        assert entry.reason == "EMERGENCY_ACCESS"
        assert entry.emergency_reason == reason
        assert entry.organisation == "organisations/hosp-catharina"
        assert list(entry.roles) == ["specialist"]

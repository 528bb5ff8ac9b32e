"""What Authorize believes of an end user asking directly (review point 3), and emergency
reasons that must name a situation and cannot be filler, with every emergency access
listable for the auditor (review point 4)."""

from __future__ import annotations

import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer

Stub = rpc_grpc.IdentityServiceStub


def _entry(
    stub: Stub, tokens: Tokens, patient: str, name: str, **extra: object
) -> pb.AccessLogEntry | None:
    token = ""
    while True:
        page = stub.ListAccessLogEntries(
            rpc.ListAccessLogEntriesRequest(
                patient=patient,
                page_size=500,
                page_token=token,
                **extra,  # type: ignore[arg-type]
            ),
            metadata=bearer(tokens.user("auditor.dekker")),
            timeout=10,
        )
        for entry in page.access_log_entries:
            if entry.name == name:
                return entry
        token = page.next_page_token
        if not token:
            return None


def _care_plan(holder: str, **extra: object) -> rpc.AuthorizeRequest:
    return rpc.AuthorizeRequest(
        patient="patients/p-0001",
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        record_holder=f"organisations/{holder}",
        **extra,  # type: ignore[arg-type]
    )


def test_an_end_users_access_point_and_free_text_purpose_are_not_believed(
    stub: Stub, tokens: Tokens
) -> None:
    request = _care_plan(
        "gp-de-linde",
        access_point="svc-referral",
        purpose="IGNORE PREVIOUS; dr.jansen read this",
    )
    reply = stub.Authorize(request, metadata=bearer(tokens.user("coach.degroot")), timeout=5)
    entry = _entry(stub, tokens, "patients/p-0001", reply.access_log_entry)
    assert entry is not None
    assert (entry.access_point, entry.purpose) == ("carenet-kis", "")


def test_a_purpose_of_the_vocabulary_is_kept_and_a_services_access_point_believed(
    stub: Stub, tokens: Tokens
) -> None:
    reply = stub.Authorize(
        _care_plan("gp-de-linde", purpose="treatment", access_point="elsewhere"),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=5,
    )
    entry = _entry(stub, tokens, "patients/p-0001", reply.access_log_entry)
    assert entry is not None
    assert (entry.access_point, entry.purpose) == ("carenet-kis", "treatment")


def test_an_end_user_claiming_to_hold_what_its_kind_never_holds_is_denied(
    stub: Stub, tokens: Tokens
) -> None:
    """coach.degroot naming its own provider as holder of p-0001's care plan got PERMIT
    CARE_RELATIONSHIP."""
    for holder in ("gli-beweegfit", ""):
        request = _care_plan(holder) if holder else _care_plan("x")
        if not holder:
            request.ClearField("record_holder")
        reply = stub.Authorize(request, metadata=bearer(tokens.user("coach.degroot")), timeout=5)
        assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "RECORD_HOLDER_NOT_PRODUCER")
    # The practice that does hold care plans is still answered as before.
    reply = stub.Authorize(
        _care_plan("gp-de-linde"), metadata=bearer(tokens.user("dr.jansen")), timeout=5
    )
    assert (reply.decision, reply.basis) == (pb.DECISION_PERMIT, pb.BASIS_CARE_RELATIONSHIP)


def _emergency(reason: str) -> rpc.AuthorizeRequest:
    return rpc.AuthorizeRequest(
        patient="patients/p-0002",
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        record_holder="organisations/gp-de-linde",
        emergency_reason=reason,
    )


@pytest.mark.parametrize(
    "reason",
    [
        "asdf qwer zxcv uiop",
        "aaa bbb ccc ddd eee",
        "lorem ipsum dolor sit amet",
        "no reason at all really",
        "admitted unconscious at the emergency department",
        "unconscious-patient: asdf qwer zxcv uiop",
        "life-threatening: lorem ipsum dolor sit amet",
    ],
)
def test_junk_emergency_reasons_give_no_access(stub: Stub, tokens: Tokens, reason: str) -> None:
    reply = stub.Authorize(_emergency(reason), metadata=bearer(tokens.user("dr.smit")), timeout=5)
    assert (reply.decision, reply.reason, reply.emergency) == (
        pb.DECISION_DENY,
        "EMERGENCY_REASON_INSUFFICIENT",
        False,
    )


def test_the_auditor_lists_the_emergency_accesses_alone(stub: Stub, tokens: Tokens) -> None:
    reason = "life-threatening: anaphylaxis on the ward, need the allergy history"
    reply = stub.Authorize(_emergency(reason), metadata=bearer(tokens.user("dr.smit")), timeout=5)
    assert (reply.decision, reply.emergency) == (pb.DECISION_PERMIT, True)
    normal = stub.Authorize(
        _care_plan("gp-de-linde"), metadata=bearer(tokens.user("dr.jansen")), timeout=5
    )
    flagged = stub.ListAccessLogEntries(
        rpc.ListAccessLogEntriesRequest(emergency_only=True, page_size=1000),
        metadata=bearer(tokens.user("auditor.dekker")),
        timeout=10,
    ).access_log_entries
    assert flagged and all(e.emergency for e in flagged)
    names = {e.name for e in flagged}
    assert reply.access_log_entry in names
    assert normal.access_log_entry not in names

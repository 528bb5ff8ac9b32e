"""A KIS acting as itself (issue 14): the client-credentials token of ``carenet-kis`` (realm
role ``delegate``, organisation gp-de-linde, naming no person) may read the referral data
its organisation holds or receives, asked directly or by the referral service for it, and
nothing else. Every question is logged like any other decision, with the KIS as user,
responsible user and access point."""

from __future__ import annotations

import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer

from .calls import subject_of_user, user_id

Stub = rpc_grpc.IdentityServiceStub
KIS_ACCOUNT = "service-account-carenet-kis"


def _question(
    patient: str = "p-0001",
    category: pb.DataCategory.ValueType = pb.DATA_CATEGORY_REFERRAL,
    action: pb.Action.ValueType = pb.ACTION_READ,
    holder: str = "",
) -> rpc.AuthorizeRequest:
    return rpc.AuthorizeRequest(
        patient=f"patients/{patient}",
        data_category=category,
        action=action,
        record_holder=f"organisations/{holder}" if holder else "",
        purpose="referral",
    )


def _entry(stub: Stub, tokens: Tokens, patient: str, name: str) -> pb.AccessLogEntry:
    """One access-log entry, as the auditor reads it."""
    token = ""
    auditor = bearer(tokens.user("auditor.dekker"))
    while True:
        page = stub.ListAccessLogEntries(
            rpc.ListAccessLogEntriesRequest(
                patient=f"patients/{patient}", page_token=token, page_size=1000
            ),
            metadata=auditor,
            timeout=10,
        )
        for entry in page.access_log_entries:
            if entry.name == name:
                return entry
        token = page.next_page_token
        if not token:
            raise AssertionError(f"{name} is not in the log")


def _logged_as_the_kis(entry: pb.AccessLogEntry, reply: rpc.AuthorizeResponse) -> None:
    kis = user_id(KIS_ACCOUNT)
    assert (entry.user, entry.responsible_user, entry.access_point) == (kis, kis, "carenet-kis")
    assert list(entry.roles) == ["delegate"]
    assert entry.organisation == "organisations/gp-de-linde"
    assert (entry.decision, entry.basis, entry.reason) == (
        reply.decision,
        reply.basis,
        reply.reason,
    )


def test_the_kis_reads_the_referral_data_its_practice_holds_and_it_is_logged(
    stub: Stub, tokens: Tokens
) -> None:
    kis = bearer(tokens.client("carenet-kis"))
    for holder in ("", "gp-de-linde"):
        reply = stub.Authorize(_question(holder=holder), metadata=kis, timeout=5)
        assert (reply.decision, reply.basis, reply.reason) == (
            pb.DECISION_PERMIT,
            pb.BASIS_CARE_RELATIONSHIP,
            "CARE_RELATIONSHIP",
        )
        entry = _entry(stub, tokens, "p-0001", reply.access_log_entry)
        _logged_as_the_kis(entry, reply)
        assert (entry.data_category, entry.action) == (pb.DATA_CATEGORY_REFERRAL, pb.ACTION_READ)


def test_the_kis_reads_no_referral_data_of_another_organisation(stub: Stub, tokens: Tokens) -> None:
    """p-0001's referral data held by another practice (to which p-0001's consent would
    not matter), and p-0003, whom only gp-het-anker treats."""
    kis = bearer(tokens.client("carenet-kis"))
    other = stub.Authorize(_question(holder="gp-het-anker"), metadata=kis, timeout=5)
    assert (other.decision, other.reason) == (pb.DECISION_DENY, "ROLE_NOT_PERMITTED")
    _logged_as_the_kis(_entry(stub, tokens, "p-0001", other.access_log_entry), other)
    unrelated = stub.Authorize(_question("p-0003"), metadata=kis, timeout=5)
    assert (unrelated.decision, unrelated.reason) == (pb.DECISION_DENY, "NO_CARE_RELATIONSHIP")
    _logged_as_the_kis(_entry(stub, tokens, "p-0003", unrelated.access_log_entry), unrelated)


@pytest.mark.parametrize(
    "category",
    [
        pb.DATA_CATEGORY_CARE_PLAN,
        pb.DATA_CATEGORY_MEASUREMENTS,
        pb.DATA_CATEGORY_PATIENT_RECORD,
        pb.DATA_CATEGORY_CONSENT,
    ],
)
def test_the_kis_reads_nothing_else_as_itself(
    stub: Stub, tokens: Tokens, category: pb.DataCategory.ValueType
) -> None:
    """Not even what its own practice holds of a patient it treats."""
    kis = bearer(tokens.client("carenet-kis"))
    reply = stub.Authorize(
        _question(category=category, holder="gp-de-linde"), metadata=kis, timeout=5
    )
    assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "ROLE_NOT_PERMITTED")
    _logged_as_the_kis(_entry(stub, tokens, "p-0001", reply.access_log_entry), reply)


@pytest.mark.parametrize("action", [pb.ACTION_CREATE, pb.ACTION_UPDATE])
def test_the_kis_writes_no_referral_as_itself(
    stub: Stub, tokens: Tokens, action: pb.Action.ValueType
) -> None:
    """A write needs a named person (x-carenet-on-behalf-of), whose roles then decide."""
    kis = bearer(tokens.client("carenet-kis"))
    reply = stub.Authorize(_question(action=action), metadata=kis, timeout=5)
    assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "ROLE_NOT_PERMITTED")
    _logged_as_the_kis(_entry(stub, tokens, "p-0001", reply.access_log_entry), reply)


def test_the_referral_service_asking_for_the_kis_gets_the_same_rule(
    stub: Stub, tokens: Tokens
) -> None:
    """The referral service names the KIS as subject (its token's roles, nobody acted for)
    and the referral's context: the practice's own referral is read on its care
    relationship, a referral addressed to the practice on the referral exception, and a
    referral between two other organisations not at all; a change of the practice's own
    referral is refused."""
    service = bearer(tokens.client("svc-referral"))
    subject = subject_of_user(KIS_ACCOUNT, client_id="carenet-kis")
    assert list(subject.roles) == ["delegate"] and not subject.on_behalf_of

    def ask(
        referrer: str, target: str, action: pb.Action.ValueType = pb.ACTION_READ
    ) -> rpc.AuthorizeResponse:
        request = _question(action=action, holder=referrer)
        request.subject.CopyFrom(subject)
        request.access_point = "carenet-kis"
        request.referral_context.CopyFrom(
            rpc.ReferralContext(
                referral="patients/p-0001/referrals/r-system",
                target_organisation=f"organisations/{target}",
                referrer_organisation=f"organisations/{referrer}",
            )
        )
        reply = stub.Authorize(request, metadata=service, timeout=5)
        _logged_as_the_kis(_entry(stub, tokens, "p-0001", reply.access_log_entry), reply)
        return reply

    made = ask("gp-de-linde", "gli-beweegfit")
    assert (made.decision, made.basis) == (pb.DECISION_PERMIT, pb.BASIS_CARE_RELATIONSHIP)
    received = ask("gp-het-anker", "gp-de-linde")
    assert (received.decision, received.basis) == (pb.DECISION_PERMIT, pb.BASIS_REFERRAL_TARGET)
    between_others = ask("gp-het-anker", "gli-beweegfit")
    assert (between_others.decision, between_others.reason) == (
        pb.DECISION_DENY,
        "ROLE_NOT_PERMITTED",
    )
    change = ask("gp-de-linde", "gli-beweegfit", pb.ACTION_UPDATE)
    assert (change.decision, change.reason) == (pb.DECISION_DENY, "ROLE_NOT_PERMITTED")


def test_a_batch_as_itself_is_decided_patient_by_patient(stub: Stub, tokens: Tokens) -> None:
    kis = bearer(tokens.client("carenet-kis"))
    reply = stub.BatchAuthorize(
        rpc.BatchAuthorizeRequest(
            patients=["patients/p-0001", "patients/p-0003", "patients/p-nobody"],
            data_category=pb.DATA_CATEGORY_REFERRAL,
            action=pb.ACTION_READ,
        ),
        metadata=kis,
        timeout=5,
    )
    assert [(d.patient, d.decision, d.reason) for d in reply.decisions] == [
        ("patients/p-0001", pb.DECISION_PERMIT, "CARE_RELATIONSHIP"),
        ("patients/p-0003", pb.DECISION_DENY, "NO_CARE_RELATIONSHIP"),
        ("patients/p-nobody", pb.DECISION_DENY, "NO_CARE_RELATIONSHIP"),
    ]

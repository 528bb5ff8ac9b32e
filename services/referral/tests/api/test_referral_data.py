"""Whose data a referral is, as identity is asked about it: the referring practice holds it,
so another organisation with a care relationship needs the patient's consent; its target
reads it (the Mitz referral exception) and lists what was addressed to it even without a
care relationship, one logged decision per referral; with nothing addressed to it, the
answer is the one for a patient it may not see."""

from __future__ import annotations

import grpc

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens
from testkit.rpc import status_of

from ..conftest import ReferralServer
from .helpers import as_user, fails, listed_offer, refer


def _list(stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, user: str, patient: str) -> list[str]:
    reply = stub.ListReferrals(
        rpc.ListReferralsRequest(parent=f"patients/{patient}"),
        metadata=as_user(tokens, user),
        timeout=10,
    )
    return [r.name for r in reply.referrals]


def test_the_target_lists_what_was_addressed_to_it_without_a_care_relationship(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    """gli-beweegfit has no care relationship with p-0002; dr.jansen refers p-0002 to it."""
    offer = listed_offer(stub, tokens, "addressed")
    sent = refer(stub, tokens, "p-0002", offer)
    before = referral_server.access_log_count()
    listed = _list(stub, tokens, "coach.degroot", "p-0002")
    assert sent.name in listed
    # one decision (and one log entry) per referral listed, as if read one by one
    assert referral_server.access_log_count() - before == len(listed)
    got = stub.GetReferral(
        rpc.GetReferralRequest(name=sent.name),
        metadata=as_user(tokens, "coach.degroot"),
        timeout=10,
    )
    assert got.name == sent.name


def test_a_target_with_nothing_addressed_to_it_is_refused_like_for_a_missing_patient(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    def listing(patient: str) -> bytes:
        status = status_of(lambda: _list(stub, tokens, "coach.degroot", patient))
        serialized: bytes = status.SerializeToString(deterministic=True)
        return serialized

    before = referral_server.access_log_count()
    unseen = listing("p-0003")  # exists, gp-het-anker's, nothing sent to gli-beweegfit
    assert referral_server.access_log_count() - before == 1
    assert unseen == listing("p-9999")
    fail = fails(lambda: _list(stub, tokens, "coach.degroot", "p-0003"))
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "NO_CARE_RELATIONSHIP")


def test_another_organisation_needs_consent_for_the_referring_practices_data(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    """dr.smit's hospital treats p-0001, who gave hospitals her care plan but not her
    referral data: the referral is the practice's record (before, identity was asked as if
    the hospital held it, and it permitted). Reading or changing it she is not even asked
    about: the hospital is no party, and to a non-party the referral is answered as one
    that does not exist, with nothing logged."""
    offer = listed_offer(stub, tokens, "holder")
    sent = refer(stub, tokens, "p-0001", offer)
    smit = as_user(tokens, "dr.smit")
    before = referral_server.access_log_count()
    fail = fails(
        lambda: stub.GetReferral(rpc.GetReferralRequest(name=sent.name), metadata=smit, timeout=10)
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.NOT_FOUND, "REFERRAL_NOT_FOUND")
    assert referral_server.access_log_count() == before
    fail = fails(
        lambda: stub.RecordReferralOutcome(
            rpc.RecordReferralOutcomeRequest(
                name=sent.name, outcome=pb.ReferralOutcome(attendance=pb.ATTENDANCE_PARTIAL)
            ),
            metadata=smit,
            timeout=10,
        )
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.NOT_FOUND, "REFERRAL_NOT_FOUND")
    assert referral_server.access_log_count() == before
    # the target (consent or not) and the referrer still read it
    for user in ("coach.degroot", "dr.jansen", "poh.bakker"):
        got = stub.GetReferral(
            rpc.GetReferralRequest(name=sent.name), metadata=as_user(tokens, user), timeout=10
        )
        assert got.name == sent.name

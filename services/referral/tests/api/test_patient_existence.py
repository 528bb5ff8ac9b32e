"""A patient the caller may not see and a patient who does not exist get the same answer
(issue 11 point 6): code, message and ErrorInfo, on every referral RPC that names a
patient.

Callers: dr.devries (a GP with no care relationship with p-0001), pat.yilmaz (another
patient), coach.visser (a sport coach who is not the target of the referral). Patients:
p-0001 (exists, has the referral), p-9999 (does not exist), p-noord-1 (another care
group's patient). A caller whose role never refers (the patient, the coach) is refused
CreateReferral before identity is asked, alike for every patient. GetReferral,
TransitionReferral and RecordReferralOutcome ask identity only for a party to the referral:
none of these callers is one, so the existing referral, and the same id under a patient who
does not exist or is another care group's, are alike NOT_FOUND with nothing logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens
from testkit.rpc import status_of

from ..conftest import ReferralServer
from .helpers import PROFILE, as_user, fails, listed_offer, refer

CALLERS = ["dr.devries", "pat.yilmaz", "coach.visser"]
NOT_REFERRERS = {"pat.yilmaz", "coach.visser"}
EXISTING = "p-0001"
UNSEEN = ["p-9999", "p-noord-1"]
Call = Callable[[rpc_grpc.ReferralServiceStub, Any, str, str], Any]


@pytest.fixture(scope="module")
def offer(stub: rpc_grpc.ReferralServiceStub, tokens: Tokens) -> str:
    return listed_offer(stub, tokens, "exist")


@pytest.fixture(scope="module")
def referral_id(stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, offer: str) -> str:
    return refer(stub, tokens, EXISTING, offer).name.rsplit("/", 1)[-1]


def _create(stub: rpc_grpc.ReferralServiceStub, md: Any, patient: str, offer: str) -> Any:
    return stub.CreateReferral(
        rpc.CreateReferralRequest(
            parent=f"patients/{patient}",
            referral=pb.Referral(offer=offer, reason="existence", profile=PROFILE),
        ),
        metadata=md,
        timeout=10,
    )


def _get(stub: rpc_grpc.ReferralServiceStub, md: Any, patient: str, rid: str) -> Any:
    return stub.GetReferral(
        rpc.GetReferralRequest(name=f"patients/{patient}/referrals/{rid}"), metadata=md, timeout=10
    )


def _list(stub: rpc_grpc.ReferralServiceStub, md: Any, patient: str, _rid: str) -> Any:
    return stub.ListReferrals(
        rpc.ListReferralsRequest(parent=f"patients/{patient}"), metadata=md, timeout=10
    )


def _transition(stub: rpc_grpc.ReferralServiceStub, md: Any, patient: str, rid: str) -> Any:
    return stub.TransitionReferral(
        rpc.TransitionReferralRequest(
            name=f"patients/{patient}/referrals/{rid}",
            status=pb.REFERRAL_STATUS_CANCELLED,
            reason="existence",
        ),
        metadata=md,
        timeout=10,
    )


def _record(stub: rpc_grpc.ReferralServiceStub, md: Any, patient: str, rid: str) -> Any:
    return stub.RecordReferralOutcome(
        rpc.RecordReferralOutcomeRequest(
            name=f"patients/{patient}/referrals/{rid}",
            outcome=pb.ReferralOutcome(attendance=pb.ATTENDANCE_PARTIAL),
        ),
        metadata=md,
        timeout=10,
    )


RPCS: dict[str, Call] = {
    "CreateReferral": _create,
    "GetReferral": _get,
    "ListReferrals": _list,
    "TransitionReferral": _transition,
    "RecordReferralOutcome": _record,
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method", list(RPCS))
def test_an_unseen_patient_and_a_missing_one_get_the_same_answer(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    referral_server: ReferralServer,
    offer: str,
    referral_id: str,
    method: str,
    caller: str,
) -> None:
    call = RPCS[method]
    md = as_user(tokens, caller)
    # CreateReferral names the offer where the others name the referral.
    arg = offer if method == "CreateReferral" else referral_id
    before = referral_server.access_log_count()
    existing = status_of(lambda: call(stub, md, EXISTING, arg))
    # identity was asked (and logged), except where the caller's role alone refuses: only
    # clinicians refer, and that is checked before identity is asked (it does not depend on
    # the patient, and so no permit is logged for a create that cannot happen)
    asked = 0 if method == "CreateReferral" and caller in NOT_REFERRERS else 1
    one_referral = method in ("GetReferral", "TransitionReferral", "RecordReferralOutcome")
    if one_referral:
        asked = 0  # not a party: answered as a referral that does not exist, not asked
    assert referral_server.access_log_count() - before == asked
    refused = grpc.StatusCode.NOT_FOUND if one_referral else grpc.StatusCode.PERMISSION_DENIED
    assert existing.code == refused.value[0]
    for patient in UNSEEN:
        missing = status_of(lambda patient=patient: call(stub, md, patient, arg))  # type: ignore[misc]
        assert missing.SerializeToString(deterministic=True) == existing.SerializeToString(
            deterministic=True
        ), (patient, missing, existing)


@pytest.mark.parametrize("caller", CALLERS)
def test_the_event_stream_of_an_unseen_patient_is_as_empty_as_that_of_a_missing_one(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_id: str, caller: str
) -> None:
    def events(patient: str) -> list[pb.ReferralEvent]:
        return list(
            stub.WatchReferralEvents(
                rpc.WatchReferralEventsRequest(patient=f"patients/{patient}", no_follow=True),
                metadata=as_user(tokens, caller),
                timeout=10,
            )
        )

    assert events(EXISTING) == events("p-9999") == events("p-noord-1") == []
    # The referrer does see it: the stream is filtered, not broken.
    mine = list(
        stub.WatchReferralEvents(
            rpc.WatchReferralEventsRequest(patient=f"patients/{EXISTING}", no_follow=True),
            metadata=as_user(tokens, "dr.jansen"),
            timeout=10,
        )
    )
    assert any(e.referral.endswith(referral_id) for e in mine)


def test_a_missing_referral_of_a_patient_the_caller_may_see_is_not_found(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    md = as_user(tokens, "dr.jansen")
    missing = fails(lambda: _get(stub, md, EXISTING, "no-such-referral"))
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "REFERRAL_NOT_FOUND")

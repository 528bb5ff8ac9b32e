"""careplan's outgoing dependencies, each behind a small Protocol:

- identity's ``Authorize``: every read and write of a plan is decided and logged there;
- referral's ``WatchReferralEvents``: the stream the plan follows its linked referrals by.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from carenet.referral.v1 import referral_pb2 as ref_pb
from carenet.referral.v1 import referral_service_pb2 as ref_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as ref_grpc
from servicekit.auth import Principal
from servicekit.authorization import Access, Category, Decision, IdentityAuthorizer

__all__ = [
    "Access",
    "AccessDecision",
    "AccessQuestion",
    "GrpcIdentityClient",
    "IdentityClient",
]


@dataclass(frozen=True)
class AccessDecision:
    permitted: bool
    reason: str


@dataclass(frozen=True)
class AccessQuestion:
    """What careplan asks identity: may ``subject`` do ``access`` on the patient's care
    plan, held by ``record_holder_id``, for ``purpose``."""

    subject: Principal
    patient_id: str
    access: Access
    record_holder_id: str = ""
    purpose: str = ""


class IdentityClient(Protocol):
    def authorize(self, question: AccessQuestion) -> AccessDecision:
        """identity's decision (logged there), asked once per access.

        A patient identity does not know in the subject's care group is a refusal like any
        other (identity's reason), never a different kind of answer, so that a patient who
        exists but may not be seen and one who does not exist look the same. Raises
        ``IdentityUnavailable`` when identity cannot be asked (fail closed).
        """
        ...


class GrpcIdentityClient:
    """``IdentityClient`` over identity's gRPC API, called with careplan's own token."""

    def __init__(
        self, channel: grpc.Channel, *, deadline_seconds: float, access_point: str
    ) -> None:
        self._authorizer = IdentityAuthorizer(channel, deadline_seconds=deadline_seconds)
        self.access_point = access_point

    def authorize(self, question: AccessQuestion) -> AccessDecision:
        q = question
        decision: Decision = self._authorizer.authorize(
            q.subject,
            q.patient_id,
            Category.CARE_PLAN,
            q.access,
            record_holder_id=q.record_holder_id,
            purpose=q.purpose,
        )
        return AccessDecision(decision.permitted, decision.reason)


# ---------------------------------------------------------------- referral events


@dataclass(frozen=True)
class ReferralEvent:
    """What the plan needs of one referral event."""

    cursor: int
    event_id: str
    referral: str  # patients/{patient}/referrals/{referral}
    patient_id: str
    status: str  # the referral status after the change, e.g. "completed"
    business_status: str
    enrolment: str
    feedback_summary: str
    event_time: dt.datetime | None


class ReferralEvents(Protocol):
    def watch(self, after_cursor: int) -> Iterator[ReferralEvent]:
        """Committed events after ``after_cursor``, in cursor order, then new ones as they
        commit; ends (or raises) when the stream breaks."""
        ...

    def close(self) -> None:
        """Cancels a running watch."""
        ...


def _enum_word(enum_type: type, value: int, prefix: str) -> str:
    name: str = enum_type.Name(value)  # type: ignore[attr-defined]
    if value == 0:
        return ""
    return name.removeprefix(prefix).lower().replace("_", "-")


def event_from_pb(event: ref_pb.ReferralEvent) -> ReferralEvent:
    return ReferralEvent(
        cursor=event.cursor,
        event_id=event.event_id,
        referral=event.referral,
        patient_id=event.patient.removeprefix("patients/"),
        status=_enum_word(ref_pb.ReferralStatus, event.status, "REFERRAL_STATUS_"),
        business_status=_enum_word(
            ref_pb.BusinessStatus, event.business_status, "BUSINESS_STATUS_"
        ),
        enrolment=_enum_word(ref_pb.Enrolment, event.enrolment, "ENROLMENT_"),
        feedback_summary=event.outcome.result_summary if event.HasField("outcome") else "",
        event_time=event.event_time.ToDatetime(tzinfo=dt.UTC)
        if event.HasField("event_time")
        else None,
    )


class GrpcReferralEvents:
    """``ReferralEvents`` over referral's ``WatchReferralEvents`` server stream."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = ref_grpc.ReferralServiceStub(channel)
        self._call: Any = None

    def watch(self, after_cursor: int) -> Iterator[ReferralEvent]:
        call = self.stub.WatchReferralEvents(
            ref_rpc.WatchReferralEventsRequest(after_cursor=after_cursor)
        )
        self._call = call
        for event in call:
            yield event_from_pb(event)

    def close(self) -> None:
        if self._call is not None:
            self._call.cancel()

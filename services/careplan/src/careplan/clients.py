"""careplan's outgoing dependencies, each behind a small Protocol:

- identity's ``Authorize`` (every read and write of a plan is decided and logged there):
  servicekit's one identity client, :mod:`servicekit.identity_client`, for the care-plan
  data category;
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

__all__ = ["GrpcReferralEvents", "ReferralEvent", "ReferralEvents", "event_from_pb"]


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
    target_organisation: str = ""  # organisation id the referral is addressed to


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
        target_organisation=event.target_organisation.removeprefix("organisations/"),
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

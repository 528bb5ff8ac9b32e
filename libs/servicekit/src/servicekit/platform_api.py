"""The four services as one client, for the platform's own HTTP fronts (the web pages and the
FHIR API): channels and stubs made once per process, and per request an :class:`Api` whose
every call carries the caller's own credentials, so identity decides and logs each access
exactly as for any other client. :func:`error_details` reads what a failed call says."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from carenet.careplan.v1 import careplan_service_pb2_grpc as careplan_grpc
from carenet.identity.v1 import identity_service_pb2_grpc as identity_grpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as outcomes_grpc
from carenet.referral.v1 import referral_service_pb2_grpc as referral_grpc
from servicekit.auth import ON_BEHALF_OF_HEADER
from servicekit.channels import open_channel

Metadata = tuple[tuple[str, str], ...]


def caller_metadata(token: str, on_behalf_of: str = "") -> Metadata:
    """``authorization: Bearer <token>`` and, for a delegate system acting for a person, that
    person in ``x-carenet-on-behalf-of`` (the services decide whether the caller may)."""
    metadata: Metadata = (("authorization", f"Bearer {token}"),)
    return metadata + (((ON_BEHALF_OF_HEADER, on_behalf_of),) if on_behalf_of else ())


class CallerStub:
    """A generated stub whose calls carry the caller's metadata and a deadline."""

    def __init__(self, stub: object, metadata: Callable[[], Metadata], deadline: float) -> None:
        self._stub = stub
        self._metadata = metadata
        self._deadline = deadline

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._stub, name)

        def call(request: object) -> Any:
            return method(request, metadata=self._metadata(), timeout=self._deadline)

        return call


@dataclass(frozen=True)
class Channels:
    identity: grpc.Channel
    referral: grpc.Channel
    careplan: grpc.Channel
    outcomes: grpc.Channel

    @classmethod
    def open(cls, identity: str, referral: str, careplan: str, outcomes: str) -> Channels:
        """Channels to the four targets (servicekit.channels: TLS and balancing by settings)."""
        return cls(
            identity=open_channel(identity),
            referral=open_channel(referral),
            careplan=open_channel(careplan),
            outcomes=open_channel(outcomes),
        )

    def all(self) -> tuple[grpc.Channel, ...]:
        return (self.identity, self.referral, self.careplan, self.outcomes)

    def close(self) -> None:
        for channel in self.all():
            channel.close()

    def readiness(self, timeout: float = 2.0) -> tuple[bool, dict[str, str]]:
        """Whether all four answer SERVING on their health service, and each one's state."""
        states: dict[str, str] = {}
        for name in ("identity", "referral", "careplan", "outcomes"):
            stub = health_pb2_grpc.HealthStub(getattr(self, name))
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
                states[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError:
                states[name] = "UNREACHABLE"
        return all(state == "SERVING" for state in states.values()), states


@dataclass(frozen=True)
class Stubs:
    """The generated stubs, made once per process (a stub holds a callable per method:
    making four of them per request costs about a millisecond)."""

    identity: identity_grpc.IdentityServiceStub
    referral: referral_grpc.ReferralServiceStub
    careplan: careplan_grpc.CarePlanServiceStub
    outcomes: outcomes_grpc.OutcomesServiceStub

    @classmethod
    def over(cls, channels: Channels) -> Stubs:
        return cls(
            identity=identity_grpc.IdentityServiceStub(channels.identity),
            referral=referral_grpc.ReferralServiceStub(channels.referral),
            careplan=careplan_grpc.CarePlanServiceStub(channels.careplan),
            outcomes=outcomes_grpc.OutcomesServiceStub(channels.outcomes),
        )


class Api:
    """The four services for one request, as the caller."""

    def __init__(self, stubs: Stubs, metadata: Callable[[], Metadata], deadline: float) -> None:
        self.identity = CallerStub(stubs.identity, metadata, deadline)
        self.referral = CallerStub(stubs.referral, metadata, deadline)
        self.careplan = CallerStub(stubs.careplan, metadata, deadline)
        self.outcomes = CallerStub(stubs.outcomes, metadata, deadline)


@dataclass(frozen=True)
class ErrorDetails:
    """What a failed call says: its code, message, ErrorInfo reason and BadRequest fields."""

    code: grpc.StatusCode
    message: str = ""
    reason: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def error_details(error: grpc.RpcError) -> ErrorDetails:
    code_of = getattr(error, "code", None)
    code: grpc.StatusCode = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
    details_of = getattr(error, "details", None)
    message = str(details_of() or "") if callable(details_of) else ""
    reason = ""
    fields: dict[str, str] = {}
    try:
        status = rpc_status.from_call(cast(grpc.Call, error))
    except (AttributeError, ValueError):
        status = None
    packed: Any
    for packed in status.details if status is not None else []:
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        if packed.Unpack(info):
            reason = info.reason
        elif packed.Unpack(bad):
            for violation in bad.field_violations:
                fields.setdefault(violation.field, violation.description)
    return ErrorDetails(code, message, reason, fields)

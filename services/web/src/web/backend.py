"""The four services, called with the signed-in person's access token.

The web front holds no patient data of its own: every page reads and writes through these
stubs, with the person's own token, so identity decides and logs each access exactly as for
any other client. gRPC errors become HTTP pages in :mod:`web.errors`; field violations of a
``BadRequest`` are read here so forms can show them at their fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from carenet.careplan.v1 import careplan_service_pb2_grpc as careplan_grpc
from carenet.identity.v1 import identity_service_pb2_grpc as identity_grpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as outcomes_grpc
from carenet.referral.v1 import referral_service_pb2_grpc as referral_grpc
from servicekit.channels import open_channel
from web.config import Settings


class _Stub:
    """A generated stub whose calls carry ``authorization: Bearer <token>`` and a deadline."""

    def __init__(self, stub: object, token: Callable[[], str], deadline: float) -> None:
        self._stub = stub
        self._token = token
        self._deadline = deadline

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._stub, name)

        def call(request: object) -> Any:
            metadata = (("authorization", f"Bearer {self._token()}"),)
            return method(request, metadata=metadata, timeout=self._deadline)

        return call


@dataclass(frozen=True)
class Channels:
    identity: grpc.Channel
    referral: grpc.Channel
    careplan: grpc.Channel
    outcomes: grpc.Channel

    @classmethod
    def open(cls, settings: Settings) -> Channels:
        return cls(
            identity=open_channel(settings.identity_target),
            referral=open_channel(settings.referral_target),
            careplan=open_channel(settings.careplan_target),
            outcomes=open_channel(settings.outcomes_target),
        )

    def close(self) -> None:
        for channel in (self.identity, self.referral, self.careplan, self.outcomes):
            channel.close()


@dataclass(frozen=True)
class Stubs:
    """The generated stubs, made once per process (making them costs per request)."""

    identity: identity_grpc.IdentityServiceStub
    referral: referral_grpc.ReferralServiceStub
    careplan: careplan_grpc.CarePlanServiceStub
    outcomes: outcomes_grpc.OutcomesServiceStub

    @classmethod
    def of(cls, channels: Channels) -> Stubs:
        return cls(
            identity_grpc.IdentityServiceStub(channels.identity),
            referral_grpc.ReferralServiceStub(channels.referral),
            careplan_grpc.CarePlanServiceStub(channels.careplan),
            outcomes_grpc.OutcomesServiceStub(channels.outcomes),
        )


class Api:
    """The four services for one request, as the signed-in person."""

    def __init__(self, stubs: Stubs, token: Callable[[], str], deadline: float) -> None:
        self.identity = _Stub(stubs.identity, token, deadline)
        self.referral = _Stub(stubs.referral, token, deadline)
        self.careplan = _Stub(stubs.careplan, token, deadline)
        self.outcomes = _Stub(stubs.outcomes, token, deadline)


@dataclass(frozen=True)
class ErrorDetails:
    code: grpc.StatusCode
    reason: str
    fields: dict[str, str]


def details(error: grpc.RpcError) -> ErrorDetails:
    """The status code, the ErrorInfo reason and the BadRequest field violations of an error."""
    code_of = getattr(error, "code", None)
    code: grpc.StatusCode = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
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
    return ErrorDetails(code, reason, fields)

"""The four services, called with the caller's own bearer token.

The FHIR API holds no data of its own: every request reads through the gRPC APIs with the
token the caller sent, so identity decides and logs each access exactly as for any other
client of the platform.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from carenet.careplan.v1 import careplan_service_pb2_grpc as careplan_grpc
from carenet.identity.v1 import identity_service_pb2_grpc as identity_grpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as outcomes_grpc
from carenet.referral.v1 import referral_service_pb2_grpc as referral_grpc
from fhir_api.config import Settings
from servicekit.auth import ON_BEHALF_OF_HEADER
from servicekit.channels import open_channel


class _Stub:
    """A generated stub whose calls carry the caller's bearer token and a deadline."""

    def __init__(
        self, stub: object, metadata: tuple[tuple[str, str], ...], deadline: float
    ) -> None:
        self._stub = stub
        self._metadata = metadata
        self._deadline = deadline

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._stub, name)

        def call(request: object) -> Any:
            return method(request, metadata=self._metadata, timeout=self._deadline)

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
    """The generated stubs of the four services, made once per process (a stub holds a
    callable per method: making four of them per request costs about a millisecond)."""

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
    """The four services for one request, as the caller: its bearer token and, for a
    delegate system acting for a person, that person in ``x-carenet-on-behalf-of`` (the
    services decide whether the caller may name one)."""

    def __init__(self, stubs: Stubs, token: str, deadline: float, on_behalf_of: str = "") -> None:
        md: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),)
        if on_behalf_of:
            md += ((ON_BEHALF_OF_HEADER, on_behalf_of),)
        self.identity = _Stub(stubs.identity, md, deadline)
        self.referral = _Stub(stubs.referral, md, deadline)
        self.careplan = _Stub(stubs.careplan, md, deadline)
        self.outcomes = _Stub(stubs.outcomes, md, deadline)

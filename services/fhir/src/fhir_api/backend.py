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
from servicekit.channels import open_channel


class _Stub:
    """A generated stub whose calls carry the caller's bearer token and a deadline."""

    def __init__(self, stub: object, token: str, deadline: float) -> None:
        self._stub = stub
        self._metadata = (("authorization", f"Bearer {token}"),)
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


class Api:
    """The four services for one request, as the caller."""

    def __init__(self, channels: Channels, token: str, deadline: float) -> None:
        self.identity = _Stub(identity_grpc.IdentityServiceStub(channels.identity), token, deadline)
        self.referral = _Stub(referral_grpc.ReferralServiceStub(channels.referral), token, deadline)
        self.careplan = _Stub(careplan_grpc.CarePlanServiceStub(channels.careplan), token, deadline)
        self.outcomes = _Stub(outcomes_grpc.OutcomesServiceStub(channels.outcomes), token, deadline)

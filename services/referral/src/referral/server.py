"""Builds the referral gRPC server."""

from __future__ import annotations

from carenet.referral.v1 import referral_service_pb2, referral_service_pb2_grpc
from referral.config import Settings
from referral.deps import Deps
from referral.errors import DOMAIN
from referral.servicer import ReferralServicer
from servicekit.auth import TokenVerifier
from servicekit.server import RunningServer
from servicekit.server import create_server as build

SERVICE_NAME = referral_service_pb2.DESCRIPTOR.services_by_name["ReferralService"].full_name


def create_server(settings: Settings, deps: Deps, verifier: TokenVerifier) -> RunningServer:
    servicer = ReferralServicer(deps)
    return build(
        host=settings.grpc_host,
        port=settings.grpc_port,
        domain=DOMAIN,
        service_names=[SERVICE_NAME],
        register=lambda server: referral_service_pb2_grpc.add_ReferralServiceServicer_to_server(
            servicer, server
        ),
        verifier=verifier,
        max_workers=settings.max_workers,
        page_token_key=settings.page_token_key.get_secret_value(),
        # The person a delegate acts for, resolved at identity before every call, so that
        # every check sees that person's roles (servicekit.delegation).
        delegations=deps.delegations,
    )

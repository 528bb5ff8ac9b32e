"""Builds the identity gRPC server."""

from __future__ import annotations

from carenet.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from identity.config import Settings
from identity.errors import DOMAIN
from identity.servicer import IdentityServicer
from identity.use_cases.deps import Deps
from servicekit.auth import TokenVerifier
from servicekit.server import RunningServer
from servicekit.server import create_server as build

SERVICE_NAME = identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name


def create_server(settings: Settings, deps: Deps, verifier: TokenVerifier) -> RunningServer:
    servicer = IdentityServicer(deps)
    return build(
        host=settings.grpc_host,
        port=settings.grpc_port,
        domain=DOMAIN,
        service_names=[SERVICE_NAME],
        register=lambda server: identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(
            servicer, server
        ),
        verifier=verifier,
        max_workers=settings.max_workers,
        page_token_key=settings.page_token_key.get_secret_value(),
    )

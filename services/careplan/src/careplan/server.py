"""Builds the careplan gRPC server."""

from __future__ import annotations

from carenet.careplan.v1 import careplan_service_pb2, careplan_service_pb2_grpc
from careplan.config import Settings
from careplan.deps import Deps
from careplan.errors import DOMAIN
from careplan.servicer import CarePlanServicer
from servicekit.auth import TokenVerifier
from servicekit.server import RunningServer
from servicekit.server import create_server as build

SERVICE_NAME = careplan_service_pb2.DESCRIPTOR.services_by_name["CarePlanService"].full_name


def create_server(settings: Settings, deps: Deps, verifier: TokenVerifier) -> RunningServer:
    servicer = CarePlanServicer(deps)
    return build(
        host=settings.grpc_host,
        port=settings.grpc_port,
        domain=DOMAIN,
        service_names=[SERVICE_NAME],
        register=lambda server: careplan_service_pb2_grpc.add_CarePlanServiceServicer_to_server(
            servicer, server
        ),
        verifier=verifier,
        max_workers=settings.max_workers,
        page_token_key=settings.page_token_key.get_secret_value(),
        # The person a delegate (a practice's KIS) acts for, resolved at identity before every
        # call, so that the write rules see that person's roles (servicekit.delegation).
        delegations=deps.delegations,
    )

"""Builds the outcomes gRPC server."""

from __future__ import annotations

from carenet.outcomes.v1 import outcomes_service_pb2, outcomes_service_pb2_grpc
from outcomes.config import Settings
from outcomes.deps import Deps
from outcomes.errors import DOMAIN
from outcomes.servicer import OutcomesServicer
from servicekit.auth import TokenVerifier
from servicekit.server import RunningServer
from servicekit.server import create_server as build

SERVICE_NAME = outcomes_service_pb2.DESCRIPTOR.services_by_name["OutcomesService"].full_name
# IngestMeasurements checks every string of a row itself and rejects a bad row alone.
ROW_CHECKED = (outcomes_service_pb2.IngestMeasurementsRequest.DESCRIPTOR.full_name,)


def create_server(settings: Settings, deps: Deps, verifier: TokenVerifier) -> RunningServer:
    servicer = OutcomesServicer(deps)
    return build(
        host=settings.grpc_host,
        port=settings.grpc_port,
        domain=DOMAIN,
        service_names=[SERVICE_NAME],
        register=lambda server: outcomes_service_pb2_grpc.add_OutcomesServiceServicer_to_server(
            servicer, server
        ),
        verifier=verifier,
        max_workers=settings.max_workers,
        page_token_key=settings.page_token_key.get_secret_value(),
        delegations=deps.delegations,
        own_string_checks=ROW_CHECKED,
    )

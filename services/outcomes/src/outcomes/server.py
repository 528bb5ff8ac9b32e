"""The outcomes gRPC server: servicekit's server factory over the outcomes servicer."""

from __future__ import annotations

from carenet.outcomes.v1 import outcomes_service_pb2
from outcomes.config import Settings
from outcomes.deps import Deps
from outcomes.errors import DOMAIN
from outcomes.servicer import OutcomesServicer
from servicekit.auth import TokenVerifier
from servicekit.server import RunningServer
from servicekit.service_server import service_server

# IngestMeasurements checks every string of a row itself and rejects a bad row alone.
ROW_CHECKED = (outcomes_service_pb2.IngestMeasurementsRequest.DESCRIPTOR.full_name,)


def create_server(settings: Settings, deps: Deps, verifier: TokenVerifier) -> RunningServer:
    return service_server(
        settings,
        OutcomesServicer(deps),
        domain=DOMAIN,
        verifier=verifier,
        delegations=deps.delegations,
        own_string_checks=ROW_CHECKED,
    )

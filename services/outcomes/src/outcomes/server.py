"""The outcomes gRPC server: servicekit's server factory over the outcomes servicer."""

from __future__ import annotations

from carenet.outcomes.v1 import outcomes_service_pb2
from outcomes.errors import DOMAIN
from outcomes.servicer import OutcomesServicer
from servicekit.service_server import server_factory

# IngestMeasurements checks every string of a row itself and rejects a bad row alone.
ROW_CHECKED = (outcomes_service_pb2.IngestMeasurementsRequest.DESCRIPTOR.full_name,)

create_server = server_factory(
    OutcomesServicer,
    domain=DOMAIN,
    delegations=lambda d: d.delegations,
    own_string_checks=ROW_CHECKED,
)

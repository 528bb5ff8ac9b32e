"""Builds the careplan gRPC server (servicekit's one server factory)."""

from __future__ import annotations

from careplan.errors import DOMAIN
from careplan.servicer import CarePlanServicer
from servicekit.service_server import server_factory

# The person a delegate (a practice's KIS) acts for is resolved at identity before every
# call, so that the write rules see that person's roles (servicekit.delegation).
create_server = server_factory(CarePlanServicer, domain=DOMAIN, delegations=lambda d: d.delegations)

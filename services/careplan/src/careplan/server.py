"""Builds the careplan gRPC server (servicekit's one server factory)."""

from __future__ import annotations

from careplan.config import Settings
from careplan.deps import Deps
from careplan.errors import DOMAIN
from careplan.servicer import CarePlanServicer
from servicekit.auth import TokenVerifier
from servicekit.server import RunningServer
from servicekit.service_server import service_server


def create_server(settings: Settings, deps: Deps, verifier: TokenVerifier) -> RunningServer:
    # The person a delegate (a practice's KIS) acts for is resolved at identity before every
    # call, so that the write rules see that person's roles (servicekit.delegation).
    return service_server(
        settings,
        CarePlanServicer(deps),
        domain=DOMAIN,
        verifier=verifier,
        delegations=deps.delegations,
    )

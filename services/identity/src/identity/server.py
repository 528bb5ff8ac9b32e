"""Builds the identity gRPC server (servicekit.service_server over the servicer)."""

from __future__ import annotations

from identity.config import Settings
from identity.errors import DOMAIN
from identity.servicer import IdentityServicer
from identity.use_cases.deps import Deps
from servicekit.auth import TokenVerifier
from servicekit.server import RunningServer
from servicekit.service_server import service_server


def create_server(settings: Settings, deps: Deps, verifier: TokenVerifier) -> RunningServer:
    return service_server(settings, IdentityServicer(deps), domain=DOMAIN, verifier=verifier)

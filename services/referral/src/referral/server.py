"""Builds the referral gRPC server (servicekit's one server factory)."""

from __future__ import annotations

from referral.config import Settings
from referral.deps import Deps
from referral.errors import DOMAIN
from referral.servicer import ReferralServicer
from servicekit.auth import TokenVerifier
from servicekit.server import RunningServer
from servicekit.service_server import service_server


def create_server(settings: Settings, deps: Deps, verifier: TokenVerifier) -> RunningServer:
    # The person a delegate (a practice's KIS) acts for is resolved at identity before every
    # call, so that every check sees that person's roles (servicekit.delegation).
    return service_server(
        settings,
        ReferralServicer(deps),
        domain=DOMAIN,
        verifier=verifier,
        delegations=deps.delegations,
    )

"""API-test fixtures that need a server of their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.config import Settings
from identity.server import create_server
from identity.use_cases.deps import Deps
from servicekit.auth import JwksCache, TokenVerifier, _fetch_json
from testkit.fixtures import IDENTITY_TEST_PEPPER
from testkit.idp import LocalIdp
from testkit.rpc import serving


class CountingFetch:
    """Fetches the real JWKS and counts how often."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, url: str) -> dict[str, Any]:
        self.calls += 1
        return _fetch_json(url)


FloodServer = tuple[rpc_grpc.IdentityServiceStub, CountingFetch, list[float]]


@pytest.fixture
def flood_server(identity_db: str, deps: Deps, local_idp: LocalIdp) -> Iterator[FloodServer]:
    """A server whose JWKS cache runs on a clock the test moves."""
    settings = Settings(
        database_url=identity_db,
        oidc_issuer=local_idp.issuer,
        grpc_host="127.0.0.1",
        grpc_port=0,
        bsn_pepper=IDENTITY_TEST_PEPPER,  # type: ignore[arg-type]
    )
    fetch = CountingFetch()
    now = [1000.0]
    jwks = JwksCache(
        settings.jwks_url,
        max_age_seconds=3600,
        refetch_cooldown_seconds=30,
        fetch=fetch,
        clock=lambda: now[0],
    )
    verifier = TokenVerifier(
        issuer=settings.oidc_issuer, audience=settings.oidc_audience, jwks=jwks
    )
    running = create_server(settings, deps, verifier)
    with serving(running) as channel:
        yield rpc_grpc.IdentityServiceStub(channel), fetch, now

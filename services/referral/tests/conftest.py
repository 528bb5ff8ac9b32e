"""Referral test fixtures. Unit tests use tests/fakes.py; integration, API and e2e tests use
real PostgreSQL and the real identity server (testkit.fixtures.identity_service)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from sqlalchemy import Engine, text

from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from referral import demo
from referral.config import Settings
from referral.deps import Deps
from referral.server import create_server
from referral.unit_of_work import units_of_work
from servicekit.auth import verifier_for
from servicekit.channels import ServiceAccountTokens, open_channel
from servicekit.db import make_engine, make_session_factory
from servicekit.delegation import IdentityDelegations
from servicekit.identity_client import Category, GrpcIdentityClient
from testkit.database import engine_on, migrated_database
from testkit.fixtures import IdentityService, service_values
from testkit.idp import LocalIdp

# The API tests' REFERRAL_PAGE_TOKEN_KEY: tests sign page tokens with it to send positions of
# a wrong type that only a holder of the key could make.
PAGE_TOKEN_KEY = "referral-api-tests-page-token-key-0123456789"


@pytest.fixture(scope="package")
def referral_db() -> Iterator[str]:
    with migrated_database("referral", "referral.migrations") as url:
        yield url


@pytest.fixture(scope="package")
def referral_engine(referral_db: str) -> Iterator[Engine]:
    with engine_on(referral_db) as engine:
        yield engine


@dataclass
class ReferralServer:
    target: str
    deps: Deps
    identity_engine: Engine
    # referral's own database, for tests that check what a call wrote.
    engine: Engine

    def access_log_count(self) -> int:
        with self.identity_engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM access_log")).scalar_one())


@pytest.fixture(scope="package")
def referral_server(
    local_idp: LocalIdp,
    identity_service: IdentityService,
    referral_db: str,
    referral_engine: Engine,
) -> Iterator[ReferralServer]:
    settings = Settings(
        **service_values(  # type: ignore[arg-type]
            "referral",
            referral_db,
            local_idp,
            identity_service.target,
            watch_poll_seconds=0.05,
            page_token_key=PAGE_TOKEN_KEY,
        )
    )
    sessions = make_session_factory(referral_engine)
    demo.seed(sessions)
    tokens = ServiceAccountTokens(
        issuer=local_idp.issuer, client_id="svc-referral", client_secret="svc-referral-secret"
    )
    channel = open_channel(identity_service.target, token=tokens)
    deps = Deps(
        uow=units_of_work(referral_engine),
        identity=GrpcIdentityClient(channel, Category.REFERRAL, deadline_seconds=5.0),
        watch_poll_seconds=0.05,
        delegations=IdentityDelegations(channel, ttl_seconds=30.0, deadline_seconds=5.0),
    )
    running = create_server(settings, deps, verifier_for(settings))
    running.start()
    identity_engine = make_engine(identity_service.database_url)
    try:
        yield ReferralServer(f"127.0.0.1:{running.port}", deps, identity_engine, referral_engine)
    finally:
        running.stop(0.5).wait()
        channel.close()
        identity_engine.dispose()


@pytest.fixture(scope="package")
def stub(referral_server: ReferralServer) -> Iterator[rpc_grpc.ReferralServiceStub]:
    with grpc.insecure_channel(referral_server.target) as channel:
        yield rpc_grpc.ReferralServiceStub(channel)

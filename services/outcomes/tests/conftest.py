"""Outcomes test fixtures: a fresh PostgreSQL database, the real identity server
(testkit.fixtures.identity_service) and a real outcomes server on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import Engine

from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes.config import Settings
from outcomes.deps import Deps
from outcomes.server import create_server
from outcomes.unit_of_work import UnitOfWork
from outcomes.use_cases.indicators import load_definitions
from servicekit.auth import verifier_for
from servicekit.channels import ServiceAccountTokens, open_channel
from servicekit.db import make_session_factory
from servicekit.delegation import IdentityDelegations
from servicekit.identity_client import Category, GrpcIdentityClient
from testkit.database import engine_on, migrated_database
from testkit.fixtures import IdentityService, service_values
from testkit.idp import LocalIdp


@pytest.fixture(scope="package")
def outcomes_db() -> Iterator[str]:
    with migrated_database("outcomes", "outcomes.migrations") as url:
        yield url


@pytest.fixture(scope="package")
def engine(outcomes_db: str) -> Iterator[Engine]:
    with engine_on(outcomes_db) as engine:
        yield engine


@pytest.fixture(scope="package")
def settings(outcomes_db: str, local_idp: LocalIdp, identity_service: IdentityService) -> Settings:
    values = service_values("outcomes", outcomes_db, local_idp, identity_service.target)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="package")
def deps(settings: Settings, engine: Engine) -> Deps:
    tokens = ServiceAccountTokens(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
    )
    channel = open_channel(settings.identity_target, token=tokens)
    sessions = make_session_factory(engine)
    deps = Deps(
        uow=lambda: UnitOfWork(sessions),
        identity=GrpcIdentityClient(channel, Category.MEASUREMENTS, deadline_seconds=10.0),
        ingest_chunk_rows=settings.ingest_chunk_rows,
        ingest_lock_timeout_seconds=settings.ingest_lock_timeout_seconds,
        delegations=IdentityDelegations(channel, ttl_seconds=30.0, deadline_seconds=10.0),
    )
    load_definitions(deps)
    return deps


@pytest.fixture(scope="package")
def outcomes_target(settings: Settings, deps: Deps) -> Iterator[str]:
    running = create_server(settings, deps, verifier_for(settings))
    running.start()
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        running.stop(1).wait()


@pytest.fixture(scope="package")
def stub(outcomes_target: str) -> Iterator[rpc_grpc.OutcomesServiceStub]:
    with grpc.insecure_channel(
        outcomes_target, options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)]
    ) as channel:
        yield rpc_grpc.OutcomesServiceStub(channel)

"""Identity test fixtures: a fresh PostgreSQL database, migrated, and a real server."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from sqlalchemy import Engine

from identity import demo, service
from identity.config import Settings
from identity.main import build_verifier
from identity.server import create_server
from identity.unit_of_work import UnitOfWork
from servicekit.db import make_engine, make_session_factory
from servicekit.migrations import upgrade
from servicekit.server import RunningServer
from testkit.database import fresh_database
from testkit.idp import LocalIdp

PEPPER = "test-pepper"


@pytest.fixture(scope="session")
def identity_db() -> Iterator[str]:
    with fresh_database("identity") as url:
        upgrade("identity.migrations", url)
        yield url


@pytest.fixture(scope="session")
def engine(identity_db: str) -> Iterator[Engine]:
    engine = make_engine(identity_db)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def deps(engine: Engine) -> service.Deps:
    sessions = make_session_factory(engine)
    deps = service.Deps(uow=lambda: UnitOfWork(sessions), bsn_pepper=PEPPER.encode())
    demo.seed(deps)
    return deps


def settings_for(url: str, idp: LocalIdp, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "oidc_issuer": idp.issuer,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "bsn_pepper": PEPPER,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def identity_server(identity_db: str, deps: service.Deps, local_idp: LocalIdp) -> Iterator[RunningServer]:
    settings = settings_for(identity_db, local_idp)
    running = create_server(settings, deps, build_verifier(settings))
    running.start()
    yield running
    running.stop(1).wait()


@pytest.fixture(scope="session")
def channel(identity_server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{identity_server.port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def stub(channel: grpc.Channel) -> rpc_grpc.IdentityServiceStub:
    return rpc_grpc.IdentityServiceStub(channel)

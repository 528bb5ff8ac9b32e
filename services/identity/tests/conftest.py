"""Identity test fixtures: the shared real identity server (testkit.fixtures.identity_service)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import Engine

from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.use_cases.deps import Deps
from servicekit.db import make_engine
from testkit.fixtures import IdentityService


@pytest.fixture(scope="package")
def identity_db(identity_service: IdentityService) -> str:
    return identity_service.database_url


@pytest.fixture(scope="package")
def engine(identity_db: str) -> Iterator[Engine]:
    engine = make_engine(identity_db)
    yield engine
    engine.dispose()


@pytest.fixture(scope="package")
def deps(identity_service: IdentityService) -> Deps:
    deps: Deps = identity_service.deps
    return deps


@pytest.fixture(scope="package")
def channel(identity_service: IdentityService) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(identity_service.target) as channel:
        yield channel


@pytest.fixture(scope="package")
def stub(channel: grpc.Channel) -> rpc_grpc.IdentityServiceStub:
    return rpc_grpc.IdentityServiceStub(channel)

"""careplan test fixtures: a fresh careplan database and a real careplan server that asks
the real identity server (testkit's ``identity_service``) with its own service token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from careplan.config import Settings
from careplan.deps import Deps
from careplan.main import build_deps
from careplan.server import create_server
from servicekit.auth import verifier_for
from servicekit.channels import ServiceAccountTokens
from testkit.database import migrated_database
from testkit.fixtures import IdentityService, service_values
from testkit.idp import LocalIdp


@pytest.fixture(scope="package")
def careplan_db() -> Iterator[str]:
    with migrated_database("careplan", "careplan.migrations") as url:
        yield url


def careplan_settings(
    url: str, idp: LocalIdp, identity_target: str, **overrides: object
) -> Settings:
    values = service_values(
        "careplan", url, idp, identity_target, consume_referral_events=False, **overrides
    )
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class CarePlanServer:
    target: str
    deps: Deps
    settings: Settings


@pytest.fixture(scope="package")
def careplan_service(
    careplan_db: str, identity_service: IdentityService, local_idp: LocalIdp
) -> Iterator[CarePlanServer]:
    settings = careplan_settings(careplan_db, local_idp, identity_service.target)
    tokens = ServiceAccountTokens(
        issuer=local_idp.issuer, client_id="svc-careplan", client_secret="svc-careplan-secret"
    )
    deps = build_deps(settings, tokens)
    running = create_server(settings, deps, verifier_for(settings))
    running.start()
    try:
        yield CarePlanServer(f"127.0.0.1:{running.port}", deps, settings)
    finally:
        running.stop(1).wait()


@pytest.fixture(scope="package")
def stub(careplan_service: CarePlanServer) -> Iterator[rpc_grpc.CarePlanServiceStub]:
    with grpc.insecure_channel(careplan_service.target) as channel:
        yield rpc_grpc.CarePlanServiceStub(channel)


@pytest.fixture(scope="package")
def identity_stub(identity_service: IdentityService) -> Iterator[id_grpc.IdentityServiceStub]:
    with grpc.insecure_channel(identity_service.target) as channel:
        yield id_grpc.IdentityServiceStub(channel)

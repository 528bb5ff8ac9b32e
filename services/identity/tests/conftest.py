"""Identity test fixtures: the shared real identity server (testkit.fixtures.identity_service)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import Engine

from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.models import OrganisationType
from identity.use_cases import organisations
from identity.use_cases.common import idempotent
from identity.use_cases.deps import Deps
from servicekit.db import make_engine
from servicekit.principals import care_group_admin
from testkit.fixtures import OTHER_TENANT, IdentityService


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
def noord_practice(deps: Deps) -> str:
    """The other tenant (cg-noord) with its practice gp-noord, whose GP ``dr.noord`` the test
    issuer signs in; made once, the same way however many tests ask for it."""
    organisations.bootstrap_care_group(
        deps,
        OTHER_TENANT,
        organisations.OrganisationInput("Zorggroep Noord", OrganisationType.CARE_GROUP),
    )
    noord_admin = care_group_admin(OTHER_TENANT, "noord-admin", client_id="test")
    organisations.create_organisation(
        deps,
        noord_admin,
        organisations.OrganisationInput(
            "Praktijk Noord", OrganisationType.GP_PRACTICE, agb_code="01099999"
        ),
        "gp-noord",
        request=idempotent(deps, noord_admin, "tests-gp-noord", "CreateOrganisation"),
    )
    return "gp-noord"


@pytest.fixture(scope="package")
def channel(identity_service: IdentityService) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(identity_service.target) as channel:
        yield channel


@pytest.fixture(scope="package")
def stub(channel: grpc.Channel) -> rpc_grpc.IdentityServiceStub:
    return rpc_grpc.IdentityServiceStub(channel)

"""Onboarding an organisation provisions its Keycloak service-account client."""

from __future__ import annotations

import pytest

from identity.clients import KeycloakProvisioner
from identity.errors import ProvisioningUnavailable
from identity.models import OrganisationType
from identity.use_cases import organisations
from identity.use_cases.deps import Deps
from servicekit.principals import care_group_admin

from ..fakes import FakeKeycloakAdmin, fake_deps

ADMIN = care_group_admin("cg-a", "admin", client_id="test")


@pytest.fixture
def deps() -> Deps:
    deps = fake_deps()
    organisations.bootstrap_care_group(
        deps, "cg-a", organisations.OrganisationInput("Zorggroep A", OrganisationType.CARE_GROUP)
    )
    return deps


def test_a_provisioned_municipality_gets_a_service_account_with_its_audiences_and_claims(
    deps: Deps,
) -> None:
    admin = FakeKeycloakAdmin()
    deps.provisioner = KeycloakProvisioner(admin)
    org = organisations.create_organisation(
        deps,
        ADMIN,
        organisations.OrganisationInput(
            "Gemeente Helmond", OrganisationType.MUNICIPALITY, cbs_municipality_code="GM0794"
        ),
        "gm-helmond",
        provision_service_account=True,
    )
    assert org.service_account_client_id == "org-gm-helmond"
    (payload,) = admin.clients.values()
    assert payload["clientId"] == "org-gm-helmond"
    assert payload["serviceAccountsEnabled"] is True
    assert payload["publicClient"] is False
    audiences = {
        m["config"]["included.client.audience"]
        for m in payload["protocolMappers"]
        if m["protocolMapper"] == "oidc-audience-mapper"
    }
    assert audiences == {"carenet-identity", "carenet-referral"}
    claims = {
        m["config"]["claim.name"]
        for m in payload["protocolMappers"]
        if m["protocolMapper"] == "oidc-usermodel-attribute-mapper"
    }
    assert claims == {"carenet_org", "carenet_tenant"}
    assert admin.user_updates == [
        (
            "user-of-internal-org-gm-helmond",
            {"attributes": {"carenet_org": ["gm-helmond"], "carenet_tenant": ["cg-a"]}},
        )
    ]


def test_an_insurer_client_only_reaches_outcomes(deps: Deps) -> None:
    admin = FakeKeycloakAdmin()
    deps.provisioner = KeycloakProvisioner(admin)
    organisations.create_organisation(
        deps,
        ADMIN,
        organisations.OrganisationInput("Zilveren Kruis", OrganisationType.INSURER, uzovi="3311"),
        "ins-zk",
        provision_service_account=True,
    )
    (payload,) = admin.clients.values()
    audiences = {
        m["config"]["included.client.audience"]
        for m in payload["protocolMappers"]
        if m["protocolMapper"] == "oidc-audience-mapper"
    }
    assert audiences == {"carenet-outcomes"}


def test_provisioning_without_admin_credentials_is_a_failed_precondition_and_creates_nothing(
    deps: Deps,
) -> None:
    with pytest.raises(ProvisioningUnavailable):
        organisations.create_organisation(
            deps,
            ADMIN,
            organisations.OrganisationInput(
                "Praktijk X", OrganisationType.GP_PRACTICE, agb_code="01000001"
            ),
            "gp-x",
            provision_service_account=True,
        )
    with pytest.raises(Exception, match="not found"):
        organisations.get_organisation(deps, ADMIN, "gp-x")

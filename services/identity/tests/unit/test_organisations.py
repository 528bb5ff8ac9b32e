"""The organisation use cases on in-memory fakes: who creates, replay by request_id, tenant
isolation, paging, and updates with an etag (the SQL is covered on PostgreSQL by the API
tests)."""

from __future__ import annotations

import dataclasses

import pytest

from identity import errors
from identity.models import OrganisationType
from identity.use_cases import organisations
from identity.use_cases.common import idempotent
from identity.use_cases.deps import Deps
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument
from servicekit.paging import PageRequest
from servicekit.principals import care_group_admin

from ..fakes import fake_deps


def _admin(care_group: str) -> Principal:
    return care_group_admin(care_group, f"admin-{care_group}", client_id="test")


PRACTICE = organisations.OrganisationInput(
    "Praktijk A", OrganisationType.GP_PRACTICE, agb_code="01000001"
)


@pytest.fixture
def deps() -> Deps:
    deps = fake_deps()
    for care_group in ("cg-a", "cg-b"):
        organisations.bootstrap_care_group(
            deps,
            care_group,
            organisations.OrganisationInput(care_group, OrganisationType.CARE_GROUP),
        )
    return deps


def test_a_repeated_request_id_returns_the_first_organisation_and_another_body_is_refused(
    deps: Deps,
) -> None:
    admin = _admin("cg-a")
    first = organisations.create_organisation(
        deps, admin, PRACTICE, "gp-a", request=idempotent(deps, admin, "r-1", "CreateOrganisation")
    )
    again = organisations.create_organisation(
        deps, admin, PRACTICE, "gp-a", request=idempotent(deps, admin, "r-1", "CreateOrganisation")
    )
    assert again is first
    with pytest.raises(errors.OrganisationExists):
        organisations.create_organisation(deps, admin, PRACTICE, "gp-a")
    other = idempotent(deps, admin, "r-1", "RegisterPatient")
    with pytest.raises(InvalidArgument) as caught:
        organisations.create_organisation(deps, admin, PRACTICE, "gp-b", request=other)
    assert caught.value.reason == "REQUEST_ID_REUSED"


def test_only_the_care_groups_own_admin_creates_and_sees_its_organisations(deps: Deps) -> None:
    organisations.create_organisation(deps, _admin("cg-a"), PRACTICE, "gp-a")
    gp = dataclasses.replace(_admin("cg-a"), roles=frozenset({"gp"}))
    with pytest.raises(errors.RoleNotPermitted):
        organisations.create_organisation(deps, gp, PRACTICE, "gp-x")
    with pytest.raises(errors.OrganisationNotFound):
        organisations.get_organisation(deps, _admin("cg-b"), "gp-a")
    listed = organisations.list_organisations(deps, _admin("cg-b"), None, PageRequest(10))
    assert [o.id for o in listed.items] == ["cg-b"]


def test_organisations_page_by_id(deps: Deps) -> None:
    admin = _admin("cg-a")
    for n in range(5):
        organisations.create_organisation(deps, admin, PRACTICE, f"gp-{n}")
    first = organisations.list_organisations(
        deps, admin, OrganisationType.GP_PRACTICE, PageRequest(3)
    )
    assert [o.id for o in first.items] == ["gp-0", "gp-1", "gp-2"]
    assert first.next == {"after": "gp-2"}
    rest = organisations.list_organisations(
        deps, admin, OrganisationType.GP_PRACTICE, PageRequest(3, first.next)
    )
    assert ([o.id for o in rest.items], rest.next) == (["gp-3", "gp-4"], None)


def test_an_update_needs_the_current_etag_and_valid_values(deps: Deps) -> None:
    admin = _admin("cg-a")
    org = organisations.create_organisation(deps, admin, PRACTICE, "gp-a")
    renamed = organisations.update_organisation(
        deps,
        admin,
        "gp-a",
        organisations.OrganisationInput("Praktijk Anders", None, etag=org.etag),
        ["display_name"],
    )
    assert (renamed.display_name, renamed.version) == ("Praktijk Anders", 2)
    with pytest.raises(errors.EtagMismatch):
        organisations.update_organisation(
            deps,
            admin,
            "gp-a",
            organisations.OrganisationInput("Weer anders", None, etag='W/"1"'),
            ["display_name"],
        )
    with pytest.raises(InvalidArgument) as caught:
        organisations.update_organisation(
            deps,
            admin,
            "gp-a",
            organisations.OrganisationInput("x", None, agb_code="12"),
            ["agb_code"],
        )
    assert caught.value.reason == "INVALID_AGB_CODE"

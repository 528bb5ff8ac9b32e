"""The people directory a delegate may act for, on real PostgreSQL: the demo seed copies the
demo realm's people (so the two cannot drift), and ``sync-people`` keeps it current from
Keycloak's admin API (here its fake): new people added, changes taken over, people gone from
the realm (or disabled) deactivated."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from identity import demo, people
from identity.main import deps_for
from identity.use_cases.deps import Deps
from servicekit.auth import Principal
from servicekit.db import make_engine
from servicekit.migrations import upgrade
from testkit.database import fresh_database

from ..fakes import FakeKeycloakAdmin

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def deps() -> Iterator[Deps]:
    with fresh_database("identity_people") as url:
        upgrade("identity.migrations", url)
        engine = make_engine(url)
        deps = deps_for(engine, b"pepper")
        demo.seed(deps)
        yield deps
        engine.dispose()


def _directory(deps: Deps) -> dict[str, tuple[str, str, str, bool]]:
    with deps.uow() as uow:
        return {p.id: (p.username, p.organisation_id, p.roles, p.active) for p in uow.repo.people()}


def test_the_demo_directory_is_the_demo_realms_people(deps: Deps) -> None:
    realm: dict[str, Any] = json.loads(demo.realm_file().read_text(encoding="utf-8"))
    expected = {
        u["id"]: (
            u["username"],
            u["attributes"]["carenet_org"][0],
            ",".join(sorted(r for r in u["realmRoles"] if r in people.PERSON_ROLES)),
            u.get("enabled", True),
        )
        for u in realm["users"]
        if "serviceAccountClientId" not in u and "carenet_org" in (u.get("attributes") or {})
    }
    assert _directory(deps) == expected
    usernames = {username for username, _, _, _ in expected.values()}
    assert {"dr.jansen", "dr.devries", "coach.degroot", "auditor.dekker"} <= usernames
    # Service accounts and patients are not people a delegate acts for.
    assert not usernames & {"service-account-carenet-kis", "pat.dewit"}


def _user(user_id: str, username: str, org: str, roles: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": username,
        "firstName": username.title(),
        "lastName": "Test",
        "enabled": True,
        "attributes": {"carenet_org": [org], "carenet_tenant": ["cg-sync"]},
        "realmRoles": roles,
        **extra,
    }


def test_a_sync_from_keycloak_adds_updates_and_deactivates(deps: Deps) -> None:
    admin = FakeKeycloakAdmin(
        [
            _user("u-1", "sync.gp", "gp-sync", ["gp", "default-roles-carenet"]),
            _user("u-2", "sync.nurse", "gp-sync", ["practice-nurse"]),
            _user("u-3", "sync.gone", "gp-sync", ["gp"]),
            _user("u-4", "service-account-kis-sync", "gp-sync", ["delegate"]),
            {"id": "u-5", "username": "sync.patient", "attributes": {"carenet_patient": ["p"]}},
        ]
    )
    before = _directory(deps)
    first = people.sync_people(deps.uow, people.keycloak_people(admin), NOW)
    assert first.added == 3
    assert first.deactivated == len([v for v in before.values() if v[3]])  # not in this realm
    directory = _directory(deps)
    assert directory["u-1"] == ("sync.gp", "gp-sync", "gp", True)
    assert "u-4" not in directory and "u-5" not in directory

    admin.users[1]["realmRoles"] = ["gp"]  # the nurse became a GP
    admin.users[0]["enabled"] = False  # disabled in Keycloak
    del admin.users[2]  # removed from the realm
    second = people.sync_people(deps.uow, people.keycloak_people(admin), NOW)
    assert (second.added, second.updated, second.deactivated) == (0, 2, 1)
    directory = _directory(deps)
    assert directory["u-1"][3] is False
    assert directory["u-2"] == ("sync.nurse", "gp-sync", "gp", True)
    assert directory["u-3"][3] is False

    # Put the demo realm's people back for the other tests of this module.
    demo.seed(deps)


def _kis(person: str, org: str = "gp-sync") -> Principal:
    return Principal(
        subject="kis-sync",
        client_id="kis-sync",
        organisation=f"organisations/{org}",
        care_group="organisations/cg-sync",
        roles=frozenset({"delegate"}),
        on_behalf_of=person,
    )


def test_acting_for_a_person_takes_their_roles_only_within_their_organisation(
    deps: Deps,
) -> None:
    admin = FakeKeycloakAdmin([_user("u-9", "sync.doc", "gp-sync", ["gp"])])
    people.sync_people(deps.uow, people.keycloak_people(admin), NOW)
    try:
        with deps.uow() as uow:
            acting = people.act_for(uow, _kis("u-9"))
            assert acting is not None
            assert (acting.roles, acting.subject, acting.responsible_user) == (
                frozenset({"gp"}),
                "kis-sync",
                "u-9",
            )
            assert people.act_for(uow, _kis("u-9", org="gp-elsewhere")) is None
            assert people.act_for(uow, _kis("nobody")) is None
            not_a_delegate = dataclasses.replace(_kis("u-9"), roles=frozenset({"gp"}))
            assert people.act_for(uow, not_a_delegate) is None
    finally:
        demo.seed(deps)

"""The people directory: the persons a delegate system client may act for.

A system client registered to act for the persons of its own organisation (a GP practice's
KIS; in Keycloak a client whose service account has the realm role ``delegate`` and the
organisation's ``carenet_org``) names the person in ``x-carenet-on-behalf-of`` by their
Keycloak user id (the ``sub`` of the person's own tokens). servicekit refuses the header from
any other caller; identity checks the rest here: the person must be in this directory,
active, and of the client's organisation and care group. The person's roles then decide,
and the access log keeps both: the client as user and access point, the person as the
responsible user. Otherwise identity's own RPCs refuse the call (PERMISSION_DENIED
``ON_BEHALF_OF_NOT_ALLOWED``) and ``Authorize`` denies with that reason (logged).

The directory is a copy of the realm's users that have an organisation (service accounts and
patients are not in it): ``identity sync-people`` reads them through Keycloak's admin API
(:func:`keycloak_people`) and :func:`sync_people` adds, updates and deactivates; the demo
seed reads the demo realm export itself (:func:`realm_people`), so the two cannot drift.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from identity.clients import KeycloakAdminClient
from identity.models import Person
from identity.unit_of_work import UnitOfWork
from servicekit import delegation
from servicekit.auth import DELEGATE_ROLE, Principal

log = logging.getLogger("identity.people")

# The roles a person can act with; a delegated call never carries a system's roles.
PERSON_ROLES = delegation.PERSON_ROLES
SERVICE_ACCOUNT_PREFIX = "service-account-"


@dataclass(frozen=True)
class PersonRecord:
    """One person as the realm describes them."""

    id: str
    username: str
    display_name: str
    organisation_id: str
    care_group_id: str
    roles: frozenset[str]
    active: bool


def _first(values: Any) -> str:
    if isinstance(values, list):
        return str(values[0]) if values else ""
    return str(values or "")


def person_of(user: Mapping[str, Any], roles: Iterable[str]) -> PersonRecord | None:
    """A Keycloak user representation as a directory entry; None for service accounts and
    for users without an organisation (patients)."""
    username = str(user.get("username") or "")
    if user.get("serviceAccountClientId") or username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    attributes = user.get("attributes") or {}
    organisation = _first(attributes.get("carenet_org"))
    care_group = _first(attributes.get("carenet_tenant"))
    user_id = str(user.get("id") or "")
    if not user_id or not organisation or not care_group:
        return None
    name = " ".join(str(p) for p in (user.get("firstName"), user.get("lastName")) if p)
    return PersonRecord(
        id=user_id,
        username=username[:200],
        display_name=(name or username)[:200],
        organisation_id=organisation,
        care_group_id=care_group,
        roles=frozenset(r for r in roles if r in PERSON_ROLES),
        active=bool(user.get("enabled", True)),
    )


def realm_people(realm: Mapping[str, Any]) -> list[PersonRecord]:
    """The people of a realm export (``users`` with their ``realmRoles``)."""
    found = (person_of(u, u.get("realmRoles") or []) for u in realm.get("users") or [])
    return [p for p in found if p is not None]


def keycloak_people(admin: KeycloakAdminClient) -> list[PersonRecord]:
    """The people of the live realm, through the admin API (effective realm roles)."""
    result: list[PersonRecord] = []
    for user in admin.get_users({}):
        if person_of(user, ()) is None:
            continue
        roles = admin.get_composite_realm_roles_of_user(str(user["id"]))
        person = person_of(user, (str(r.get("name", "")) for r in roles))
        if person is not None:
            result.append(person)
    return result


@dataclass(frozen=True)
class SyncReport:
    added: int
    updated: int
    deactivated: int


def sync_people(
    uow: Callable[[], UnitOfWork], people: Iterable[PersonRecord], now: dt.datetime
) -> SyncReport:
    """Makes the directory match ``people``: new ones added, changed ones updated, and anyone
    no longer there deactivated (kept, so that old log entries still resolve to a name)."""
    added = updated = deactivated = 0
    with uow() as work:
        known = {p.id: p for p in work.repo.people()}
        seen: set[str] = set()
        for record in people:
            seen.add(record.id)
            # The directory's columns as the realm describes the person (roles joined).
            values = asdict(record)
            del values["id"]
            values["roles"] = ",".join(sorted(record.roles))[:300]
            row = known.get(record.id)
            if row is None:
                work.repo.add(Person(id=record.id, update_time=now, **values))
                added += 1
            elif any(getattr(row, column) != value for column, value in values.items()):
                for column, value in values.items():
                    setattr(row, column, value)
                row.update_time = now
                updated += 1
        for person_id, row in known.items():
            if person_id not in seen and row.active:
                row.active = False
                row.update_time = now
                deactivated += 1
        work.commit()
    return SyncReport(added, updated, deactivated)


def resolve(uow: UnitOfWork, principal: Principal) -> delegation.Person | None:
    """The person a delegate may act for: the one ``on_behalf_of`` names, if the caller's
    token holds ``delegate`` and the person is active and of the caller's organisation and
    care group; otherwise None. Decided on the token's own roles (``token_roles``), also
    for a principal a service already resolved, so identity never takes a service's copy of
    the person's roles."""
    if not principal.on_behalf_of or DELEGATE_ROLE not in principal.token_roles:
        return None
    person = uow.repo.person(principal.on_behalf_of)
    if (
        person is None
        or not person.active
        or principal.organisation != f"organisations/{person.organisation_id}"
        or principal.care_group != f"organisations/{person.care_group_id}"
    ):
        return None
    return delegation.Person(
        user=person.id,
        roles=person.role_set & PERSON_ROLES,
        organisation=f"organisations/{person.organisation_id}",
        care_group=f"organisations/{person.care_group_id}",
    )


def act_for(uow: UnitOfWork, principal: Principal) -> Principal | None:
    """The principal a call is decided as: itself when it names nobody; for a delegate
    naming a person it may act for (:func:`resolve`), the delegate acting as that person
    (servicekit.delegation.as_person: the person's roles, ``on_behalf_of`` kept, so the log
    names both); otherwise None."""
    if not principal.on_behalf_of:
        return principal
    person = resolve(uow, principal)
    if person is None:
        return None
    return delegation.as_person(principal, person)

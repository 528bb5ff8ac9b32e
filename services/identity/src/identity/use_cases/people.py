"""The people RPCs: ``ResolveDelegation``, identity's own callers acting for a person, and
``LookupPeople`` (the directory itself, and who may act for whom: :mod:`identity.people`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from identity import errors
from identity.people import PERSON_ROLES, act_for, resolve
from identity.use_cases.common import care_group_of
from identity.use_cases.deps import Deps
from servicekit import delegation
from servicekit.auth import ON_BEHALF_OF_HEADER, Principal
from servicekit.errors import InvalidArgument, Violations

log = logging.getLogger("identity.people")


def resolve_delegation(
    deps: Deps, caller: Principal, subject: Principal | None
) -> delegation.Person:
    """``ResolveDelegation``: the person ``subject`` (a service asking about its caller) or
    the caller itself acts for (:func:`resolve`); PERMISSION_DENIED
    ``ON_BEHALF_OF_NOT_ALLOWED`` when it may not act for them. Touches no patient data, so
    nothing is written to the access log; a refusal is logged as an event naming the
    client only."""
    if subject is not None and not caller.is_service:
        raise errors.RoleNotPermitted(
            "only services may ask on behalf of another subject", reason="SUBJECT_NOT_ALLOWED"
        )
    asked = subject or caller
    if not asked.on_behalf_of:
        field = "subject.on_behalf_of" if subject is not None else ON_BEHALF_OF_HEADER
        raise InvalidArgument.single(field, "names no person", "ON_BEHALF_OF_REQUIRED")
    with deps.uow() as work:
        person = resolve(work, asked)
    if person is None:
        log.warning("delegation_refused", extra={"client_id": asked.client_id[:100]})
        raise errors.OnBehalfOfNotAllowed(NOT_ALLOWED)
    return person


NOT_ALLOWED = "the on-behalf-of header must name an active person of the caller's organisation"


def acting_principal(deps: Deps, principal: Principal) -> Principal:
    """:func:`act_for` for identity's own RPCs: a name that is not allowed is refused."""
    if not principal.on_behalf_of:
        return principal
    with deps.uow() as work:
        acting = act_for(work, principal)
    if acting is None:
        raise errors.OnBehalfOfNotAllowed(NOT_ALLOWED)
    return acting


# Who may look people up (LookupPeople): the roles of a care group's staff and of its
# organisations' system clients (a KIS acting as itself holds ``delegate``). They see the
# people of their own care group: the care group is where referrals, care plans and the
# access log are shared, and a person's name, roles and organisation are professional
# directory data, not patient data. A patient sees only the people who appear in their own
# access log (as user or responsible user), which is where anyone who read or wrote their
# referral, care plan or measurements appears. Insurers (aggregated reports only) and
# platform services see nobody.
LOOKUP_ROLES = frozenset(
    {
        "gp",
        "practice-nurse",
        "specialist",
        "provider",
        "sport-coach",
        "municipality-officer",
        "care-group-admin",
        "auditor",
        "delegate",
    }
)
MAX_LOOKUP = 100
MAX_USER_ID = 200


@dataclass(frozen=True)
class PersonSummary:
    """A person as other carenet users may see them; nothing more."""

    user: str
    display_name: str
    roles: tuple[str, ...]
    organisation_id: str
    organisation_display_name: str


@dataclass(frozen=True)
class PeopleFound:
    people: list[PersonSummary]
    not_found: list[str]


def lookup_people(deps: Deps, principal: Principal, users: Sequence[str]) -> PeopleFound:
    """``LookupPeople``: the people ``users`` names that the caller may see (see
    :data:`LOOKUP_ROLES`), in the order asked; everyone else, unknown or not visible alike,
    in ``not_found``. Touches no patient data, so nothing is written to the access log."""
    v = Violations()
    if not users:
        v.add("users", "name at least one user", "USERS_REQUIRED")
    if len(users) > MAX_LOOKUP:
        v.add("users", f"at most {MAX_LOOKUP} users", "TOO_MANY_USERS")
    for i, user in enumerate(users[:MAX_LOOKUP]):
        if not user:
            v.add(f"users[{i}]", "is empty", "USER_REQUIRED")
        elif len(user) > MAX_USER_ID:
            v.add(f"users[{i}]", f"at most {MAX_USER_ID} characters", "USER_ID_TOO_LONG")
    v.raise_if_any()
    care_group_id = care_group_of(principal)
    patient_id = principal.patient.removeprefix("patients/") if principal.is_patient else ""
    if not care_group_id or not (patient_id or principal.roles & LOOKUP_ROLES):
        raise errors.RoleNotPermitted("this role may not look people up")
    asked = list(dict.fromkeys(users))
    with deps.uow() as uow:
        candidates = (
            uow.repo.users_in_patient_log(patient_id, care_group_id, asked) if patient_id else asked
        )
        found = {
            p.id: p
            for p in uow.repo.people_by_ids(list(candidates))
            if p.care_group_id == care_group_id
        }
        names = uow.repo.organisation_names(
            care_group_id, sorted({p.organisation_id for p in found.values()})
        )
    people = [
        PersonSummary(
            user=p.id,
            display_name=p.display_name,
            roles=tuple(sorted(p.role_set & PERSON_ROLES)),
            organisation_id=p.organisation_id,
            organisation_display_name=names.get(p.organisation_id, ""),
        )
        for p in (found[u] for u in asked if u in found)
    ]
    return PeopleFound(people, [u for u in asked if u not in found])

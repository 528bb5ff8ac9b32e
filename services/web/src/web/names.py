"""Names for the ids the services give: an organisation by its display name (identity's
``GetOrganisation``), a person by theirs (``LookupPeople``), always with the signed-in
person's own token.

Organisation names are no patient data and change rarely, so :class:`OrganisationNames`
keeps them per process for ``WEB_ORGANISATION_NAMES_TTL_SECONDS``, per care group (identity
answers each care group with its own organisations); the ids a page still lacks are asked for
together, in parallel, so a page costs at most one round trip for them and none once they
are known. People are looked up per page and never kept: what identity lets a person see of
the people directory depends on who asks (a patient sees only the people in their own access
log). A name that cannot be found (unknown, not visible, identity unreachable) is shown as
its id, without an error.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc
from flask import Flask, current_app, g

from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from web import auth
from web.backend import Metadata, caller_metadata
from web.backend import details as error_details

log = logging.getLogger("web.names")

# Keycloak user ids (a token's `sub`): the only values LookupPeople is asked about.
USER_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ORGANISATION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_PEOPLE = 100  # LookupPeople's limit per call
MAX_ENTRIES = 10_000
# Answers that mean "no name to show": kept like a name, so the page does not ask again.
NO_NAME = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)


def bare(name: str) -> str:
    """``organisations/gp-de-linde`` and ``gp-de-linde`` alike: ``gp-de-linde``."""
    return name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class _Entry:
    display_name: str  # "" when identity has no name to show for the caller's care group
    expires: float


class OrganisationNames:
    """Display names of organisations, per care group, kept for ``ttl`` seconds."""

    def __init__(
        self,
        stub: id_grpc.IdentityServiceStub,
        ttl: float,
        deadline: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = stub
        self._ttl = ttl
        self._deadline = deadline
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}

    def resolve(
        self, care_group: str, metadata: Callable[[], Metadata], organisations: Iterable[str]
    ) -> dict[str, str]:
        """Each organisation (``organisations/x`` or ``x``) by its bare id: its display name,
        or the id itself when there is none to show."""
        wanted = {bare(o) for o in organisations if o}
        wanted = {o for o in wanted if ORGANISATION_ID.match(o)}
        now = self._clock()
        found: dict[str, str] = {}
        missing: list[str] = []
        with self._lock:
            for org in wanted:
                entry = self._entries.get((care_group, org))
                if entry is not None and entry.expires > now:
                    found[org] = entry.display_name or org
                else:
                    missing.append(org)
        if missing:
            found.update(self._fetch(care_group, metadata, sorted(missing)))
        return found

    def _fetch(
        self, care_group: str, metadata: Callable[[], Metadata], missing: list[str]
    ) -> dict[str, str]:
        caller = metadata()
        calls = {
            org: self._stub.GetOrganisation.future(
                id_rpc.GetOrganisationRequest(name=f"organisations/{org}"),
                metadata=caller,
                timeout=self._deadline,
            )
            for org in missing
        }
        names: dict[str, str] = {}
        learnt: dict[str, str] = {}
        for org, call in calls.items():
            try:
                learnt[org] = call.result().display_name
            except grpc.RpcError as err:
                code = error_details(err).code
                if code in NO_NAME:
                    learnt[org] = ""
                else:  # unreachable or slow: shown as the id now, asked again next time
                    log.info("organisation_name_unavailable code=%s", code.name)
            names[org] = learnt.get(org) or org
        expires = self._clock() + self._ttl
        with self._lock:
            if len(self._entries) + len(learnt) > MAX_ENTRIES:
                now = self._clock()
                self._entries = {k: v for k, v in self._entries.items() if v.expires > now}
                if len(self._entries) + len(learnt) > MAX_ENTRIES:
                    self._entries.clear()
            for org, display_name in learnt.items():
                self._entries[(care_group, org)] = _Entry(display_name, expires)
        return names


def people(
    stub: id_grpc.IdentityServiceStub,
    metadata: Callable[[], Metadata],
    deadline: float,
    users: Iterable[str],
) -> dict[str, str]:
    """The display names of the user ids among ``users`` that identity lets the caller see
    (LookupPeople, one call, nothing kept); values that are no user id (a name typed in a
    plan, for one) are not asked about."""
    asked = [u for u in dict.fromkeys(users) if USER_ID.match(u)][:MAX_PEOPLE]
    if not asked:
        return {}
    try:
        reply = stub.LookupPeople(
            id_rpc.LookupPeopleRequest(users=asked), metadata=metadata(), timeout=deadline
        )
    except grpc.RpcError as err:
        log.info("people_lookup_unavailable code=%s", error_details(err).code.name)
        return {}
    return {p.user: p.display_name for p in reply.people if p.display_name}


# ------------------------------------------------------------------ in a request


def _metadata() -> Metadata:
    return caller_metadata(auth.access_token())


def organisations(names: Iterable[str]) -> dict[str, str]:
    """For a page: the display names of these organisations (see :class:`OrganisationNames`),
    also kept for the page's templates (``organisation_name``)."""
    user = auth.current_user()
    cache: OrganisationNames = current_app.extensions["carenet_organisation_names"]
    found = cache.resolve(user.care_group if user else "", _metadata, names)
    g.organisation_names = {**g.get("organisation_names", {}), **found}
    return found


def look_up_people(users: Iterable[str]) -> dict[str, str]:
    """For a page: the display names of these users that the caller may see (see
    :func:`people`), also kept for the page's templates (``person_name``)."""
    stub: id_grpc.IdentityServiceStub = current_app.extensions["carenet_identity_stub"]
    deadline: float = current_app.config["CARENET_SETTINGS"].call_deadline_seconds
    found = people(stub, _metadata, deadline, users)
    g.people_names = {**g.get("people_names", {}), **found}
    return found


def organisation_name(name: str) -> str:
    """In a template: the organisation's display name when the page looked it up, else its
    id."""
    org = bare(name)
    found: dict[str, str] = g.get("organisation_names", {})
    return found.get(org, org)


def person_name(user: str) -> str:
    """In a template: the person's display name when the page looked it up, else the value
    as the service gave it."""
    found: dict[str, str] = g.get("people_names", {})
    return found.get(user, user)


def init_app(app: Flask, stub: id_grpc.IdentityServiceStub, ttl: float, deadline: float) -> None:
    app.extensions["carenet_organisation_names"] = OrganisationNames(stub, ttl, deadline)
    app.extensions["carenet_identity_stub"] = stub
    app.jinja_env.globals.update(organisation_name=organisation_name, person_name=person_name)

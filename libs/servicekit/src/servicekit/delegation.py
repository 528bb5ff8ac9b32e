"""Acting for a person: the call runs as the person identity vouches for.

A delegate system client (realm role ``delegate``, e.g. a practice's KIS) names the person it
acts for in ``x-carenet-on-behalf-of`` (servicekit.auth refuses the header from anyone
else). Its token carries the client's roles (``delegate``), not the person's. So that every
check of a service (its role checks before identity is asked, its party checks after, the
roles identity decides with) sees the person, the server resolves the person once per call,
in the call interceptor before the method runs (:class:`Delegations`):

- a service asks identity's ``ResolveDelegation`` (:class:`IdentityDelegations`), which
  answers from its people directory: the person's roles, organisation and care group, for an
  active person of the client's own organisation and care group, else PERMISSION_DENIED
  ``ON_BEHALF_OF_NOT_ALLOWED``. The answer (either way) is cached per client and person for
  a bounded time (``<SVC>_DELEGATION_CACHE_SECONDS``, at most :data:`MAX_TTL_SECONDS`);
  identity unreachable is UNAVAILABLE ``IDENTITY_UNAVAILABLE`` and nothing is cached;
- identity resolves locally, from the same directory (identity.people).

The call then runs with :func:`as_person`: the person's roles, organisation and care group;
the client stays the subject (the access log's user and access point) and the person is the
responsible user. A refusal happens before the method runs, so nothing is read, written or
logged for a person the client may not act for.

Within the cache time a person disabled in the directory can still be acted for in the
service's own checks; identity's ``Authorize`` always decides from the directory as it is
(servicekit.authorization.subject_of passes the client's own roles and the person's id, not
the resolved roles), so patient data is never reached on a stale answer.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import grpc

from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from servicekit.auth import ALL_ROLES, DELEGATE_ROLE, OnBehalfOfNotAllowed, Principal
from servicekit.authorization import IdentityUnavailable, subject_of
from servicekit.channels import with_retries

MAX_TTL_SECONDS = 300.0
DEFAULT_TTL_SECONDS = 30.0
NOT_ALLOWED_MESSAGE = (
    "the on-behalf-of header must name an active person of the caller's organisation"
)
# Roles a person can act with: never a system's.
PERSON_ROLES = ALL_ROLES - {"service", DELEGATE_ROLE, "patient"}


@dataclass(frozen=True)
class Person:
    """Whom a delegate acts for, as identity's directory knows them."""

    user: str
    roles: frozenset[str]
    organisation: str  # organisations/{id}
    care_group: str  # organisations/{id}


def as_person(principal: Principal, person: Person) -> Principal:
    """``principal`` (a delegate naming ``person``) acting with the person's roles,
    organisation and care group; the client stays the subject and keeps its own roles in
    ``client_roles``."""
    return dataclasses.replace(
        principal,
        roles=person.roles,
        organisation=person.organisation,
        care_group=person.care_group,
        client_roles=principal.token_roles,
    )


class Delegations(Protocol):
    """Resolves the person a call acts for (called only when ``on_behalf_of`` is set)."""

    def resolve(self, principal: Principal) -> Principal:
        """The principal acting as the person, or :class:`OnBehalfOfNotAllowed`."""
        ...


class IdentityDelegations:
    """:class:`Delegations` through identity's ``ResolveDelegation``, with the service's own
    token on ``channel``; answers cached for ``ttl_seconds`` (0 to MAX_TTL_SECONDS), at most
    ``max_entries`` of them."""

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        deadline_seconds: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"the delegation cache time must be 0 to {MAX_TTL_SECONDS:g} s")
        self._stub = rpc_grpc.IdentityServiceStub(channel)
        self._ttl = ttl_seconds
        self._deadline = deadline_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, ...], tuple[float, Person | None]] = {}
        self.asked = 0  # calls made to identity (for tests and metrics)

    def resolve(self, principal: Principal) -> Principal:
        key = (
            principal.subject,
            principal.client_id,
            principal.organisation,
            principal.care_group,
            ",".join(sorted(principal.token_roles)),
            principal.on_behalf_of,
        )
        now = self._clock()
        with self._lock:
            cached = self._answers.get(key)
        if cached is not None and now < cached[0]:
            person = cached[1]
        else:
            person = self._ask(principal)
            if self._ttl > 0:
                with self._lock:
                    if len(self._answers) >= self._max_entries:
                        self._answers.clear()
                    self._answers[key] = (now + self._ttl, person)
        if person is None:
            raise OnBehalfOfNotAllowed(NOT_ALLOWED_MESSAGE)
        return as_person(principal, person)

    def _ask(self, principal: Principal) -> Person | None:
        """identity's answer: the person, or None when it refused the delegation."""
        request = rpc.ResolveDelegationRequest(subject=subject_of(principal))
        self.asked += 1
        try:
            reply = with_retries(
                lambda remaining: self._stub.ResolveDelegation(request, timeout=remaining),
                self._deadline,
            )
        except grpc.RpcError as error:
            if getattr(error, "code", lambda: None)() == grpc.StatusCode.PERMISSION_DENIED:
                return None
            raise IdentityUnavailable(
                "identity could not resolve the person acted for; call refused"
            ) from error
        if reply.person != principal.on_behalf_of:
            return None
        return Person(
            user=reply.person,
            roles=frozenset(reply.roles) & PERSON_ROLES,
            organisation=reply.organisation,
            care_group=reply.care_group,
        )

"""The people RPCs: ``ResolveDelegation`` and identity's own callers acting for a person
(the directory itself, and who may act for whom: :mod:`identity.people`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from identity import errors
from identity.people import act_for, resolve
from identity.unit_of_work import UnitOfWork
from servicekit import delegation
from servicekit.auth import ON_BEHALF_OF_HEADER, Principal
from servicekit.errors import InvalidArgument

log = logging.getLogger("identity.people")


def resolve_delegation(
    uow: Callable[[], UnitOfWork], caller: Principal, subject: Principal | None
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
    with uow() as work:
        person = resolve(work, asked)
    if person is None:
        log.warning("delegation_refused", extra={"client_id": asked.client_id[:100]})
        raise errors.OnBehalfOfNotAllowed(NOT_ALLOWED)
    return person


NOT_ALLOWED = "the on-behalf-of header must name an active person of the caller's organisation"


def acting_principal(uow: Callable[[], UnitOfWork], principal: Principal) -> Principal:
    """:func:`act_for` for identity's own RPCs: a name that is not allowed is refused."""
    if not principal.on_behalf_of:
        return principal
    with uow() as work:
        acting = act_for(work, principal)
    if acting is None:
        raise errors.OnBehalfOfNotAllowed(NOT_ALLOWED)
    return acting

"""What every use case shares: the roles it checks, pages, the caller's organisation and
care group, and request_id replay."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from identity.models import (
    RequestRecord,
)
from identity.unit_of_work import UnitOfWork
from identity.use_cases.deps import Deps
from servicekit import idempotency
from servicekit.auth import Principal

T = TypeVar("T")

ADMIN_ROLES = frozenset({"care-group-admin"})
REGISTER_ROLES = frozenset({"gp", "practice-nurse", "specialist", "care-group-admin"})
RECORDING_ROLES = frozenset({"gp", "practice-nurse", "specialist"})
VERIFY_ROLES = frozenset({"auditor", "care-group-admin"})


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    last: str | int | None


def page_of(items: Sequence[T], limit: int, key: Callable[[T], str | int]) -> Page[T]:
    """A page from ``limit + 1`` fetched items: the extra one only says there is more."""
    if len(items) > limit:
        return Page(items[:limit], key(items[limit - 1]) if limit else None)
    return Page(items, None)


def names_org(org_id: str) -> str:
    return f"organisations/{org_id}"


def org_id_of(principal: Principal) -> str:
    return principal.organisation.removeprefix("organisations/")


def care_group_of(principal: Principal) -> str:
    return principal.care_group.removeprefix("organisations/")


def keyed_fingerprint(deps: Deps, fingerprint: str) -> str:
    """The stored form of a request's fingerprint: keyed, because a RegisterPatient request
    carries a BSN, and a plain hash of a 9-digit number is no secret."""
    return hmac.new(deps.bsn_pepper, fingerprint.encode(), hashlib.sha256).hexdigest()


def replayed(
    deps: Deps,
    uow: UnitOfWork,
    principal: Principal,
    request_id: str,
    method: str,
    fingerprint: str,
) -> str | None:
    """The name the first request with this id created, None for a new request; the same id
    with another method or another request is INVALID_ARGUMENT REQUEST_ID_REUSED."""
    if not request_id:
        return None
    idempotency.check(request_id)
    record = uow.repo.request_record(principal.subject, request_id)
    return idempotency.replayed(record, method, keyed_fingerprint(deps, fingerprint))


def remember(
    deps: Deps,
    uow: UnitOfWork,
    principal: Principal,
    request_id: str,
    method: str,
    name: str,
    fingerprint: str,
) -> None:
    if request_id:
        uow.repo.add(
            RequestRecord(
                caller=principal.subject,
                request_id=request_id,
                method=method,
                fingerprint=keyed_fingerprint(deps, fingerprint),
                resource_name=name,
            )
        )

"""Small pieces the use cases share: ids, text limits, etags, pages, request ids."""

from __future__ import annotations

import uuid

from referral import errors
from referral.errors import Violations
from referral.models import RequestRecord
from referral.unit_of_work import UnitOfWork
from servicekit import idempotency
from servicekit.auth import Principal

MAX_TEXT = 4000


def new_id() -> str:
    return uuid.uuid4().hex


def check_text(v: Violations, path: str, value: str, limit: int = MAX_TEXT) -> None:
    if len(value) > limit:
        v.add(path, f"at most {limit} characters", "TEXT_TOO_LONG")


def check_etag(etag: str, current: str) -> None:
    if etag and etag != current:
        raise errors.EtagMismatch("the offer or referral has changed; read it again")


def replayed(
    uow: UnitOfWork, principal: Principal, request_id: str, method: str, fingerprint: str
) -> str | None:
    """The name the first request with this id created, None for a new request; a reuse of
    the id for another method or another request is REQUEST_ID_REUSED."""
    if not request_id:
        return None
    idempotency.check(request_id)
    record = uow.repo.request_record(principal.subject, request_id)
    return idempotency.replayed(record, method, fingerprint)


def remember(
    uow: UnitOfWork,
    principal: Principal,
    request_id: str,
    method: str,
    name: str,
    fingerprint: str,
) -> None:
    if request_id:
        uow.repo.remember_request(
            RequestRecord(
                subject=principal.subject,
                request_id=request_id,
                method=method,
                resource_name=name,
                fingerprint=fingerprint,
            )
        )

"""Small pieces the use cases share: ids, text limits, etags, pages, request ids."""

from __future__ import annotations

import uuid

from referral import errors
from referral.errors import Violations

MAX_TEXT = 4000


def new_id() -> str:
    return uuid.uuid4().hex


def check_text(v: Violations, path: str, value: str, limit: int = MAX_TEXT) -> None:
    if len(value) > limit:
        v.add(path, f"at most {limit} characters", "TEXT_TOO_LONG")


def check_etag(etag: str, current: str) -> None:
    if etag and etag != current:
        raise errors.EtagMismatch("the offer or referral has changed; read it again")

"""Page sizes and opaque page tokens (AIP-158).

A page token carries the position after the last item returned plus a fingerprint of the
request's filters; a token used with other filters is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from servicekit.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(
    requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    if requested < 0:
        raise InvalidArgument.single("page_size", "must not be negative", "INVALID_PAGE_SIZE")
    if requested > maximum:
        raise InvalidArgument.single(
            "page_size", f"must be at most {maximum}", "PAGE_SIZE_TOO_LARGE"
        )
    return requested or default


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PageToken:
    position: dict[str, Any]
    fingerprint: str

    def encode(self) -> str:
        raw = json.dumps({"p": self.position, "f": self.fingerprint}, sort_keys=True)
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, expected_fingerprint: str) -> dict[str, Any] | None:
    """The position of a page token, ``None`` for the first page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        position = data["p"]
        fp = data["f"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument.single(
            "page_token", "not a valid page token", "INVALID_PAGE_TOKEN"
        ) from exc
    if fp != expected_fingerprint or not isinstance(position, dict):
        raise InvalidArgument.single(
            "page_token", "page token does not match the request", "INVALID_PAGE_TOKEN"
        )
    return position


def next_token(position: dict[str, Any] | None, expected_fingerprint: str) -> str:
    return PageToken(position, expected_fingerprint).encode() if position is not None else ""


class Pager:
    """Page size and page token of one List call whose items are ordered by a single key.

    ``Pager(request, *filters)`` validates ``request.page_size`` and ``request.page_token``
    (a token is only valid with the same filters); ``after(default)`` is the key to continue
    after; ``next_token(last)`` is the token to return (empty when ``last`` is None).
    """

    def __init__(self, request: Any, *filters: object) -> None:
        self.size = page_size(request.page_size)
        self.fingerprint = fingerprint(*filters)
        self.position = decode_page_token(request.page_token, self.fingerprint)

    def after(self, default: Any) -> Any:
        return self.position["after"] if self.position else default

    def next_token(self, last: Any) -> str:
        return next_token({"after": last} if last is not None else None, self.fingerprint)

    def token_for(self, position: dict[str, Any] | None) -> str:
        """A token for a position with several keys (e.g. a sort key and an id)."""
        return next_token(position, self.fingerprint)

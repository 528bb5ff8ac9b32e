"""Page sizes and opaque page tokens (AIP-158).

A page token carries the position after the last item returned plus a fingerprint of the
request's filters, and is authenticated: ``<payload>.<tag>``, both base64url, the tag an
HMAC-SHA256 of the payload under the service's page-token key. A token whose tag does not
match (forged, altered, or from a process with another key) is refused before anything in
it is read; a token used with other filters is refused; a position whose keys or value types
are not the ones the list expects is refused. All three are INVALID_ARGUMENT
``INVALID_PAGE_TOKEN`` naming ``page_token``, so no position of an unexpected shape ever
reaches a query.

The key: each service's ``<SVC>_PAGE_TOKEN_KEY`` (:class:`servicekit.config.ServiceSettings`),
given to :func:`servicekit.server.create_server`, which makes it the key of every call the
server serves (:func:`signing_with`). Replicas of a service must share it, or a token from
one replica is refused by the next. Unset (local runs, tests), each process draws a random
key of its own. Changing the key invalidates the tokens handed out before, which costs a
client no more than starting its listing again.

A position is a flat JSON object whose values are strings or integers. Lists say what they
expect with a ``schema`` (key -> ``str`` or ``int``): integers must fit a 64-bit column;
strings must be at most MAX_STRING_LENGTH characters of valid Unicode without NUL, so that
PostgreSQL accepts them as parameters.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from servicekit.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_TOKEN_LENGTH = 4096
MAX_STRING_LENGTH = 512
MIN_KEY_BYTES = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Schema = Mapping[str, type]
Position = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")
# The position of a list ordered by one string key (an id): the key of the last item.
AFTER_ID: Schema = {"after": str}
# The position of a ranked list: how many items were returned before.
OFFSET: Schema = {"offset": int}

_DOMAIN = b"carenet-page-token-v1\x00"
_current_key: contextvars.ContextVar[bytes | None] = contextvars.ContextVar(
    "carenet_page_token_key", default=None
)


class _ProcessKey:
    """A random key drawn once, on first use, for this process."""

    def __init__(self) -> None:
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def get(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = secrets.token_bytes(MIN_KEY_BYTES)
            return self._key


_process_key = _ProcessKey()


def capped_page_size(
    requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """AIP-158: 0 is ``default``, above ``maximum`` is ``maximum`` (capped, not refused);
    negative is INVALID_ARGUMENT ``INVALID_PAGE_SIZE``."""
    if requested < 0:
        raise InvalidArgument.single("page_size", "must not be negative", "INVALID_PAGE_SIZE")
    return min(requested or default, maximum)


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- the key


def key_from_setting(value: str) -> bytes | None:
    """The key a ``<SVC>_PAGE_TOKEN_KEY`` setting gives; None when it is unset."""
    return value.encode() if value else None


@contextmanager
def signing_with(key: bytes | None) -> Iterator[None]:
    """Page tokens made and read inside the block use ``key`` (None: the process's key)."""
    token = _current_key.set(key)
    try:
        yield
    finally:
        _current_key.reset(token)


def current_key() -> bytes:
    """The key of the call being served, else this process's random key."""
    key = _current_key.get()
    return key if key is not None else _process_key.get()


def _tag(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, _DOMAIN + payload, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --------------------------------------------------------------------------- tokens


def _invalid(description: str = "not a valid page token") -> InvalidArgument:
    return InvalidArgument.single("page_token", description, "INVALID_PAGE_TOKEN")


@dataclass(frozen=True)
class PageToken:
    position: dict[str, Any]
    fingerprint: str

    def encode(self, key: bytes | None = None) -> str:
        payload = json.dumps({"p": self.position, "f": self.fingerprint}, sort_keys=True).encode()
        return f"{_b64(payload)}.{_b64(_tag(payload, key or current_key()))}"


def _open(token: str, key: bytes) -> Any:
    """The payload of a token whose tag is right, parsed; INVALID_PAGE_TOKEN otherwise."""
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise _invalid()
    payload_text, dot, tag_text = token.partition(".")
    if not dot:
        raise _invalid()
    try:
        payload = _unb64(payload_text)
        tag = _unb64(tag_text)
    except (ValueError, binascii.Error) as exc:
        raise _invalid() from exc
    if not hmac.compare_digest(tag, _tag(payload, key)):
        raise _invalid()
    try:
        return json.loads(payload)
    except ValueError as exc:  # cannot happen for a token we made; kept fail-closed
        raise _invalid() from exc


def check_position(position: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """``position`` if it has exactly the schema's keys, each of its type; else
    INVALID_PAGE_TOKEN."""
    if set(position) != set(schema):
        raise _invalid("page token does not match the request")
    for name, kind in schema.items():
        if not _is_a(position[name], kind):
            raise _invalid("page token does not match the request")
    return dict(position)


def _is_a(value: Any, kind: type) -> bool:
    if kind is int:
        return type(value) is int and INT64_MIN <= value <= INT64_MAX
    if kind is str:
        return isinstance(value, str) and _storable(value)
    raise TypeError(f"page positions hold str or int values, not {kind.__name__}")


def _storable(value: str) -> bool:
    if len(value) > MAX_STRING_LENGTH or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry and PostgreSQL cannot
        return False
    return True


def decode_page_token(
    token: str,
    expected_fingerprint: str,
    *,
    schema: Schema | None = None,
    key: bytes | None = None,
) -> dict[str, Any] | None:
    """The position of a page token, ``None`` for the first page (an empty token).

    The tag is checked first, under ``key`` (default: :func:`current_key`), then the
    fingerprint, then (with a ``schema``) the position's keys and value types. Without a
    schema the position is only known to be an object this service made; read its values
    with the type they must have.
    """
    if not token:
        return None
    data = _open(token, key or current_key())
    if not isinstance(data, dict) or set(data) != {"p", "f"}:
        raise _invalid()
    position, fp = data["p"], data["f"]
    if fp != expected_fingerprint or not isinstance(position, dict):
        raise _invalid("page token does not match the request")
    if schema is not None:
        return check_position(position, schema)
    return position


def next_token(
    position: dict[str, Any] | None, expected_fingerprint: str, *, key: bytes | None = None
) -> str:
    return PageToken(position, expected_fingerprint).encode(key) if position is not None else ""


# --------------------------------------------------------------------------- one way to page
#
# The servicer reads the request's page size and token into a PageRequest (Paging), the
# use case reads one page from the repository and returns a Page with the position after
# its last item, and the servicer turns that position into the next page token. The service
# layer never sees a token.


@dataclass(frozen=True)
class PageRequest:
    """What a use case needs to read one page: its ``size`` (already defaulted and capped)
    and the ``position`` to continue after (None: the first page), of the list's schema."""

    size: int
    position: Position | None = None

    def after(self, default: Any = None) -> Any:
        """The single key of an ``{"after": ...}`` position, ``default`` on the first page."""
        return self.position["after"] if self.position else default

    @property
    def offset(self) -> int:
        """The offset of an ``{"offset": n}`` position, 0 on the first page."""
        return int(self.position["offset"]) if self.position else 0

    @property
    def limit(self) -> int:
        """How many items to fetch: one more than the page, to know whether more follow."""
        return self.size + 1


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its ``items`` and the ``next`` position (None: the last page)."""

    items: Sequence[T]
    next: Position | None = None

    @classmethod
    def of(
        cls,
        fetched: Sequence[T],
        request: PageRequest,
        position_of: Callable[[T], Position],
    ) -> Page[T]:
        """A page from up to ``request.limit`` items fetched after the request's position:
        the extra item only says that more follow; the next position is that of the last
        item returned."""
        if len(fetched) > request.size:
            items = fetched[: request.size]
            return cls(items, position_of(items[-1]) if items else None)
        return cls(fetched, None)

    @classmethod
    def after_key(
        cls, fetched: Sequence[T], request: PageRequest, key: Callable[[T], Any]
    ) -> Page[T]:
        """:meth:`of` for a list ordered by one key: the position is ``{"after": key}``."""
        return cls.of(fetched, request, lambda item: {"after": key(item)})

    @classmethod
    def slice(cls, ranked: Sequence[T], request: PageRequest) -> Page[T]:
        """The page of a fully ranked list at the request's offset (position
        ``{"offset": n}``)."""
        start = request.offset
        items = ranked[start : start + request.size]
        more = start + request.size < len(ranked)
        return cls(items, {"offset": start + request.size} if more else None)


@dataclass(frozen=True)
class PositionKind:
    """The positions one list's page tokens carry: their keys and value types (``schema``)
    and, where the types say too little, a check (``valid``) that refuses a position of the
    right types but outside what the list could have put there (e.g. an id longer than ids
    are)."""

    schema: Schema
    valid: Callable[[Position], bool] | None = None

    def accepts(self, position: Position) -> bool:
        return self.valid is None or self.valid(position)


# A list ordered by one string key (an id), any such key accepted.
BY_ID = PositionKind(AFTER_ID)


class Paging:
    """The servicer's side of one List call (AIP-158).

    ``Paging(request, *filters, position=BY_ID)`` reads ``request.page_size`` (0: the
    default, above the maximum: the maximum, negative: INVALID_PAGE_SIZE) and
    ``request.page_token`` (authenticated, made for the same filters, its position exactly of
    the :class:`PositionKind`'s schema and accepted by its check; else INVALID_PAGE_TOKEN).
    Pass ``page`` (a :class:`PageRequest`) to the use case and answer
    ``next_page_token=paging.token(page)``. ``maximum`` is :data:`MAX_PAGE_SIZE` for every
    list; a list whose page costs more per item (ranking, explaining) may pass a lower one and
    documents it.
    """

    def __init__(
        self,
        request: Any,
        *filters: object,
        position: PositionKind = BY_ID,
        default: int = DEFAULT_PAGE_SIZE,
        maximum: int = MAX_PAGE_SIZE,
        key: bytes | None = None,
    ) -> None:
        self._fingerprint = fingerprint(*filters)
        self._key = key
        size = capped_page_size(request.page_size, default=default, maximum=maximum)
        after = decode_page_token(
            request.page_token, self._fingerprint, schema=position.schema, key=key
        )
        if after is not None and not position.accepts(after):
            raise _invalid("page token does not match the request")
        self.page = PageRequest(size, after)

    def token(self, page: Page[Any]) -> str:
        """The next page token of ``page`` (empty on the last page)."""
        return next_token(page.next, self._fingerprint, key=self._key)

    def reply(
        self, response: Callable[..., R], field: str, page: Page[T], convert: Callable[[T], Any]
    ) -> R:
        """The List response: ``field`` holds ``convert`` of every item of ``page``,
        ``next_page_token`` its :meth:`token`."""
        return response(
            **{field: [convert(item) for item in page.items]}, next_page_token=self.token(page)
        )

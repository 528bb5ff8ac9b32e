"""Request bodies that cannot be decoded answer INVALID_ARGUMENT, not a bare INTERNAL.

grpc decodes a request with the method's deserializer before any interceptor or handler
runs, and answers a deserializer's exception with INTERNAL "Exception deserializing
request!" and no ``google.rpc.Status``. :func:`tolerant` wraps a deserializer so that it
never raises: an undecodable body becomes :data:`UNDECODABLE`, and the call interceptor
turns that into :func:`malformed` (INVALID_ARGUMENT ``MALFORMED_REQUEST``, a BadRequest
naming ``request``) with the same status shape as every other error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

from servicekit.errors import InvalidArgument

Deserializer = Callable[[bytes], Any]


class _Undecodable:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDECODABLE"


UNDECODABLE: Final = _Undecodable()


def malformed(message_name: str) -> InvalidArgument:
    what = f"a {message_name}" if message_name else "the request message"
    return InvalidArgument.single(
        "request", f"the request body could not be decoded as {what}", "MALFORMED_REQUEST"
    )


def message_name(deserializer: Deserializer | None) -> str:
    """The full name of the message a generated ``FromString`` deserializer decodes."""
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", ""))


def tolerant(deserializer: Deserializer | None) -> Deserializer | None:
    """``deserializer`` returning UNDECODABLE instead of raising (None stays None: raw bytes)."""
    if deserializer is None:
        return None
    decode = deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return decode(data)
        except Exception:  # any failure to decode is the caller's malformed body
            return UNDECODABLE

    return deserialize


def checked(request: Any, name: str) -> Any:
    """``request``, or :func:`malformed` when its body could not be decoded."""
    if request is UNDECODABLE:
        raise malformed(name)
    return request


def checked_stream(requests: Iterator[Any], name: str) -> Iterator[Any]:
    """The requests of a client stream; the first undecodable one ends it with
    :func:`malformed`."""
    for request in requests:
        yield checked(request, name)

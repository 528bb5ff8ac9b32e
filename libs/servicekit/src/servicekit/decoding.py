"""Request bodies that cannot be decoded answer INVALID_ARGUMENT, not a bare INTERNAL.

grpc decodes a request with the method's deserializer before any interceptor or handler
runs, and answers a deserializer's exception with INTERNAL "Exception deserializing
request!" and no ``google.rpc.Status``. :func:`tolerant` wraps a deserializer so that it
never raises: an undecodable body becomes :data:`UNDECODABLE`, and the call interceptor
turns that into :func:`malformed` (INVALID_ARGUMENT ``MALFORMED_REQUEST``, a BadRequest
naming ``request``) with the same status shape as every other error.

The same step refuses text PostgreSQL cannot hold: a protobuf string may contain NUL
(U+0000), PostgreSQL text cannot, and the driver raises on it (a query parameter or a row
holding one), which a caller would see as INTERNAL. A decoded request with a NUL in any
string field (nested, repeated and map fields alike; ``bytes`` fields may hold any byte) is
INVALID_ARGUMENT ``INVALID_CHARACTERS`` naming each such field (:func:`nul_violations`).
Only a body that holds a zero byte at all is walked, so the common request costs one
``bytes`` search, and the walk that names fields runs only once a quick one
(:func:`has_nul`) found a NUL. A batch whose service checks each row's strings itself and
rejects a bad row alone (outcomes' ``IngestMeasurementsRequest``: a rejected row must not
drop the rest) is not walked: its numbers hold zero bytes, so the walk would run on every
body, and one bad row would refuse the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from servicekit.errors import FieldViolation, InvalidArgument

NUL = "\x00"

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


class _Refused:
    """A decoded request refused by a guard; the call interceptor raises ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


def _strings(message: Message, path: str) -> Iterator[tuple[str, str]]:
    """(field path, value) of every string set in ``message``, nested ones included."""
    for field, value in message.ListFields():
        name = f"{path}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                # A map entry is named by its key (AIP-161), unless the key is the problem.
                shown = str(key)
                entry = f"{name}.{shown}" if shown.isprintable() and len(shown) <= 64 else name
                if isinstance(key, str):
                    yield name, key
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    yield from _strings(item, f"{entry}.")
                elif value_field.type == FieldDescriptor.TYPE_STRING:
                    yield entry, item
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            items = value if field.is_repeated else [value]
            for i, item in enumerate(items):
                index = f"[{i}]" if field.is_repeated else ""
                yield from _strings(item, f"{name}{index}.")
        elif field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                for i, item in enumerate(value):
                    yield f"{name}[{i}]", item
            else:
                yield name, value


def has_nul(message: Message) -> bool:
    """Whether any string of ``message`` (nested, repeated and map fields alike) holds a
    NUL: the walk of :func:`_strings` without building field paths, so that a body holding
    a zero byte only in its numbers (most do) costs a quarter of the naming walk."""
    for field, value in message.ListFields():
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            if any(NUL in item for item in value) if field.is_repeated else NUL in value:
                return True
        elif kind == FieldDescriptor.TYPE_MESSAGE:
            entry = field.message_type
            if entry is not None and entry.GetOptions().map_entry:
                value_kind = entry.fields_by_name["value"].type
                for key, item in value.items():
                    if isinstance(key, str) and NUL in key:
                        return True
                    if value_kind == FieldDescriptor.TYPE_MESSAGE and has_nul(item):
                        return True
                    if value_kind == FieldDescriptor.TYPE_STRING and NUL in item:
                        return True
            elif any(has_nul(item) for item in value) if field.is_repeated else has_nul(value):
                return True
    return False


def nul_violations(request: Message) -> list[FieldViolation]:
    """A field violation ``INVALID_CHARACTERS`` for every string field holding a NUL."""
    return [
        FieldViolation(path, "must not contain NUL characters", "INVALID_CHARACTERS")
        for path, value in _strings(request, "")
        if NUL in value
    ]


def tolerant(
    deserializer: Deserializer | None, *, check_strings: bool = True
) -> Deserializer | None:
    """``deserializer`` returning UNDECODABLE instead of raising, and (unless
    ``check_strings`` is False) a refusal marker for a request with a NUL in a string
    (None stays None: raw bytes)."""
    if deserializer is None:
        return None
    decode = deserializer

    def deserialize(data: bytes) -> Any:
        try:
            request = decode(data)
        except Exception:  # any failure to decode is the caller's malformed body
            return UNDECODABLE
        if check_strings and b"\x00" in data and isinstance(request, Message) and has_nul(request):
            violations = nul_violations(request)
            if violations:
                return _Refused(InvalidArgument(violations))
        return request

    return deserialize


def checked(request: Any, name: str) -> Any:
    """``request``, or :func:`malformed` when its body could not be decoded, or the guard's
    refusal (``INVALID_CHARACTERS``)."""
    if request is UNDECODABLE:
        raise malformed(name)
    if isinstance(request, _Refused):
        raise request.error
    return request


def checked_stream(requests: Iterator[Any], name: str) -> Iterator[Any]:
    """The requests of a client stream; the first undecodable one ends it with
    :func:`malformed`."""
    for request in requests:
        yield checked(request, name)

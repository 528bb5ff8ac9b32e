"""Text in a request that PostgreSQL cannot hold is refused before it is used.

A protobuf string may contain NUL (U+0000); PostgreSQL text cannot, and the driver raises
on it (a query with such a parameter, or a row holding it), which the caller would see as
INTERNAL. :func:`refuse_nul` walks every string set in a request (nested and repeated fields
alike; referral's requests have no maps) and answers INVALID_ARGUMENT ``INVALID_CHARACTERS``
naming each field that holds one. :func:`checked_requests` applies it to every RPC of a
servicer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from referral import errors
from servicekit.errors import FieldViolation

NUL = "\x00"
T = TypeVar("T")


def _strings(message: Message, path: str) -> Iterator[tuple[str, str]]:
    """(field path, value) of every string set in ``message``."""
    for field, value in message.ListFields():
        name = f"{path}{field.name}"
        if field.type == FieldDescriptor.TYPE_MESSAGE:
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


def refuse_nul(request: Message) -> None:
    """INVALID_ARGUMENT ``INVALID_CHARACTERS`` naming every string field holding a NUL."""
    bad = [path for path, value in _strings(request, "") if NUL in value]
    if bad:
        raise errors.invalid(
            [
                FieldViolation(p, "must not contain NUL characters", "INVALID_CHARACTERS")
                for p in bad
            ]
        )


def checked_requests(service: ServiceDescriptor) -> Callable[[type[T]], type[T]]:
    """A class decorator: every RPC of ``service`` on the servicer first refuses NUL."""

    def decorate(cls: type[T]) -> type[T]:
        for method in service.methods:
            handler = getattr(cls, method.name)

            @functools.wraps(handler)
            def checked(self: Any, request: Message, context: Any, _handler: Any = handler) -> Any:
                refuse_nul(request)
                return _handler(self, request, context)

            setattr(cls, method.name, checked)
        return cls

    return decorate

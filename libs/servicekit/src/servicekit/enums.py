"""Proto enums to domain enums, with the error a client should get for a bad value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from servicekit.errors import InvalidArgument

T = TypeVar("T")


def from_proto(mapping: Mapping[Any, T], value: int, field: str) -> T | None:
    """The domain value for a proto enum value; ``None`` for the UNSPECIFIED zero.

    A number the mapping does not know is INVALID_ARGUMENT naming ``field``.
    """
    if value == 0:
        return None
    if value not in mapping:
        raise InvalidArgument.single(field, "unknown value", "UNKNOWN_ENUM_VALUE")
    return mapping[value]


def required(mapping: Mapping[Any, T], value: int, field: str) -> T:
    """Like :func:`from_proto`, but UNSPECIFIED is INVALID_ARGUMENT too."""
    result = from_proto(mapping, value, field)
    if result is None:
        raise InvalidArgument.single(field, "is required", "FIELD_REQUIRED")
    return result

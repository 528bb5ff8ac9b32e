"""Proto enums to domain enums, with the error a client should get for a bad value.

Build a service's maps with :class:`EnumMap` (derived by naming convention, both ways);
read request values with :func:`from_proto` / :func:`required` (or the map's methods).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
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


def _prefix_of(enum_type: Any) -> str:
    """``OfferCategory`` -> ``OFFER_CATEGORY_``: the prefix protobuf style gives the values
    of an enum."""
    name: str = enum_type.DESCRIPTOR.name
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper() + "_"


def proto_name(value: str, prefix: str) -> str:
    """``foo-bar`` -> ``PREFIX_FOO_BAR``: the naming convention between a model value and a
    proto enum value."""
    return prefix + value.upper().replace("-", "_").replace(" ", "_")


class EnumMap(Mapping[int, T]):
    """Proto enum numbers <-> model values, derived by naming convention.

    ``EnumMap(pb.OfferCategory, models.OfferCategory)`` maps ``OFFER_CATEGORY_FOO_BAR`` to
    the member whose value is ``foo-bar`` (the prefix is derived from the enum's name, or
    given). ``models`` is an enum of string values, or an iterable of plain strings.
    ``aliases`` names the few proto values that do not follow the convention (model value ->
    proto name). Every model value must have its proto value, and every proto value but the
    zero one its model value unless listed in ``unmapped``: a new value on either side fails
    at import, not at a call.

    It is a ``Mapping[int, model]`` (so :func:`from_proto` and :func:`required` take it) and
    has :meth:`to_proto` for the way out.
    """

    def __init__(
        self,
        enum_type: Any,
        models: Iterable[T],
        *,
        prefix: str | None = None,
        aliases: Mapping[str, str] | None = None,
        unmapped: Iterable[str] = (),
    ) -> None:
        prefix = _prefix_of(enum_type) if prefix is None else prefix
        aliases = dict(aliases or {})
        known: dict[str, int] = dict(enum_type.items())
        self._in: dict[int, T] = {}
        self._out: dict[str, int] = {}
        for model in models:
            value = str(getattr(model, "value", model))
            name = aliases.pop(value, None) or proto_name(value, prefix)
            if name not in known:
                raise LookupError(f"{enum_type.DESCRIPTOR.name} has no {name} for {value!r}")
            self._in[known[name]] = model
            self._out[value] = known[name]
        if aliases:
            raise LookupError(f"aliases of values that are not models: {sorted(aliases)}")
        skipped = set(unmapped)
        missing = [
            n
            for n, number in known.items()
            if number and number not in self._in and n not in skipped
        ]
        if missing:
            raise LookupError(f"{enum_type.DESCRIPTOR.name} values without a model: {missing}")

    def __getitem__(self, number: int) -> T:
        return self._in[number]

    def __iter__(self) -> Iterator[int]:
        return iter(self._in)

    def __len__(self) -> int:
        return len(self._in)

    def from_proto(self, value: int, field: str) -> T | None:
        """See :func:`from_proto`."""
        return from_proto(self, value, field)

    def required(self, value: int, field: str) -> T:
        """See :func:`required`."""
        return required(self, value, field)

    def to_proto(self, value: Any) -> int:
        """The proto number of a model value (a member or its string value); 0 for None or
        an empty string. A value the map does not know is a programming error (KeyError)."""
        if value is None or value == "":
            return 0
        return self._out[str(getattr(value, "value", value))]

"""Frozen views of rows: a use case hands out a dataclass, not the ORM row it read.

Where the view's fields are the row's columns of the same names, :func:`view_of` makes it
without naming each one twice::

    return view_of(Revision, row, changed_fields=row.changed_fields.split(","))
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

V = TypeVar("V", bound="DataclassInstance")


def view_of(view: type[V], row: object, **given: Any) -> V:
    """The dataclass ``view`` whose fields are ``row``'s attributes of the same names, but
    for those ``given``."""
    for field in dataclasses.fields(view):
        if field.init and field.name not in given:
            given[field.name] = getattr(row, field.name)
    return view(**given)

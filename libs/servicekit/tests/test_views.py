"""servicekit.views.view_of: a dataclass made from a row's attributes of the same names."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from servicekit.views import view_of


@dataclasses.dataclass(frozen=True)
class _View:
    name: str
    version: int
    tags: list[str]


def test_each_field_is_the_rows_attribute_of_its_name_unless_given() -> None:
    row = SimpleNamespace(name="a", version=3, tags="x,y", other="ignored")
    assert view_of(_View, row, tags=row.tags.split(",")) == _View("a", 3, ["x", "y"])
    assert view_of(_View, SimpleNamespace(name="b", version=1, tags=[])) == _View("b", 1, [])


def test_a_row_without_a_field_of_the_view_is_an_error() -> None:
    with pytest.raises(AttributeError):
        view_of(_View, SimpleNamespace(name="a", tags=[]))

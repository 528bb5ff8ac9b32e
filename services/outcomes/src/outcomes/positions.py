"""The positions outcomes' page tokens carry, read with the types each list expects.

servicekit.paging checks that a token belongs to the request (and, where it does so, that
it was issued by this service); the position inside is read here: a well-formed token whose
position has another type (a string where an id number belongs, a number where a name
belongs, a missing key, a time that is no time) is INVALID_ARGUMENT ``INVALID_PAGE_TOKEN``
naming ``page_token``, never INTERNAL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from servicekit.errors import InvalidArgument

# Row ids are PostgreSQL bigints.
MAX_ROW_ID = 2**63 - 1
MAX_TEXT = 200


def _invalid() -> InvalidArgument:
    return InvalidArgument.single("page_token", "not a valid page token", "INVALID_PAGE_TOKEN")


def after_int(position: Mapping[str, Any] | None, key: str) -> int | None:
    """A row id to continue after; None on the first page."""
    if position is None:
        return None
    value = position.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ROW_ID:
        raise _invalid()
    return value


def after_text(position: Mapping[str, Any] | None, key: str) -> str | None:
    """A name or id to continue after; None on the first page."""
    if position is None:
        return None
    value = position.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
        raise _invalid()
    return value


def after_definition(position: Mapping[str, Any] | None) -> tuple[str, int] | None:
    """(code, version) to continue after (ListIndicatorDefinitions)."""
    if position is None:
        return None
    code = after_text(position, "c")
    version = after_int(position, "v")
    assert code is not None and version is not None
    return code, version


def after_report(position: Mapping[str, Any] | None) -> tuple[dt.datetime, str] | None:
    """(create time, id) to continue after (ListReports, newest first)."""
    if position is None:
        return None
    stamp = after_text(position, "t")
    report_id = after_text(position, "id")
    assert stamp is not None and report_id is not None
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError as exc:
        raise _invalid() from exc
    if moment.tzinfo is None:
        raise _invalid()
    return moment, report_id

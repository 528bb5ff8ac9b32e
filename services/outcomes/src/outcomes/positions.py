"""The positions outcomes' page tokens carry: their schemas and range checks, which the
servicer gives servicekit.paging.Paging (a well-formed token whose position has another
type, or a value outside what the list could have put there, is INVALID_ARGUMENT
``INVALID_PAGE_TOKEN`` naming ``page_token``, never INTERNAL), and the readers the use cases
take a checked position apart with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

# Row ids are PostgreSQL bigints.
MAX_ROW_ID = 2**63 - 1
MAX_TEXT = 200

# Enrolments and measurements: the id of the last row.
ROW: Mapping[str, type] = {"id": int}
# Contracts: the id of the last contract.
CONTRACT: Mapping[str, type] = {"id": str}
# Indicator definitions: code and version of the last one.
DEFINITION: Mapping[str, type] = {"c": str, "v": int}
# Reports, newest first: create time (ISO 8601 with offset) and id of the last one.
REPORT: Mapping[str, type] = {"t": str, "id": str}


def _row_id(value: int) -> bool:
    return 0 <= value <= MAX_ROW_ID


def _text(value: str) -> bool:
    return 0 < len(value) <= MAX_TEXT


def _time(value: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def valid_row(position: Mapping[str, Any]) -> bool:
    return _row_id(position["id"])


def valid_contract(position: Mapping[str, Any]) -> bool:
    return _text(position["id"])


def valid_definition(position: Mapping[str, Any]) -> bool:
    return _text(position["c"]) and _row_id(position["v"])


def valid_report(position: Mapping[str, Any]) -> bool:
    return _text(position["t"]) and _text(position["id"]) and _time(position["t"]) is not None


def after_row(position: Mapping[str, Any] | None) -> int | None:
    """The row id to continue after; None on the first page."""
    return None if position is None else int(position["id"])


def after_contract(position: Mapping[str, Any] | None) -> str | None:
    return None if position is None else str(position["id"])


def after_definition(position: Mapping[str, Any] | None) -> tuple[str, int] | None:
    """(code, version) to continue after."""
    return None if position is None else (str(position["c"]), int(position["v"]))


def after_report(position: Mapping[str, Any] | None) -> tuple[dt.datetime, str] | None:
    """(create time, id) to continue after (newest first)."""
    if position is None:
        return None
    moment = _time(str(position["t"]))
    assert moment is not None  # valid_report checked it
    return moment, str(position["id"])

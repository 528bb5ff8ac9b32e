"""The positions outcomes' page tokens carry, one servicekit.paging.PositionKind a list
(its schema and range check) that the servicer gives servicekit.paging.Paging (a
well-formed token whose position has another type, or a value outside what the list could
have put there, is INVALID_ARGUMENT ``INVALID_PAGE_TOKEN`` naming ``page_token``, never
INTERNAL), and the readers the use cases take a checked position apart with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from servicekit.paging import PositionKind

# Row ids are PostgreSQL bigints.
MAX_ROW_ID = 2**63 - 1
MAX_TEXT = 200


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


# Enrolments and measurements: the id of the last row.
ROW = PositionKind({"id": int}, valid_row)
# Contracts: the id of the last contract.
CONTRACT = PositionKind({"id": str}, valid_contract)
# Indicator definitions: code and version of the last one.
DEFINITION = PositionKind({"c": str, "v": int}, valid_definition)
# Reports, newest first: create time (ISO 8601 with offset) and id of the last one.
REPORT = PositionKind({"t": str, "id": str}, valid_report)


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

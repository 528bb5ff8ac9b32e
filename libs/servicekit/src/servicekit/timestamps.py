"""Conversions between protobuf Timestamps and aware datetimes.

A Timestamp that comes from a request is converted with :func:`from_request`, which names
the field: ``seconds`` outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z or ``nanos``
outside 0..999,999,999 is INVALID_ARGUMENT ``INVALID_TIMESTAMP`` for that field (protobuf's
own conversion raises ValueError or OverflowError on them, which would be INTERNAL).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from servicekit.errors import InvalidArgument

# The range google.protobuf.Timestamp defines (and datetime can hold).
MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_NANOS = 999_999_999


def to_proto(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC))
    return ts


def from_proto(value: Timestamp, present: bool = True) -> dt.datetime | None:
    """An aware UTC datetime, or ``None`` when the field was not set.

    For a Timestamp the service wrote itself; one from a request goes through
    :func:`from_request`.
    """
    if not present or (value.seconds == 0 and value.nanos == 0):
        return None
    return value.ToDatetime(tzinfo=dt.UTC)


def is_valid(value: Timestamp) -> bool:
    """Whether ``value`` lies in the range a Timestamp may hold."""
    return MIN_SECONDS <= value.seconds <= MAX_SECONDS and 0 <= value.nanos <= MAX_NANOS


def from_request(value: Timestamp, field: str, present: bool = True) -> dt.datetime | None:
    """:func:`from_proto` for a Timestamp in a request: ``field`` is its path in the request
    (e.g. ``"measurements[3].effective_time"``), named in the INVALID_ARGUMENT when the value
    is out of range. ``None`` when the field was not set."""
    if not present or (value.seconds == 0 and value.nanos == 0):
        return None
    if not is_valid(value):
        raise InvalidArgument.single(
            field,
            "must be a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z "
            "with nanos from 0 to 999999999",
            "INVALID_TIMESTAMP",
        )
    return value.ToDatetime(tzinfo=dt.UTC)


def field_from_request(message: Any, field: str, path: str) -> dt.datetime | None:
    """:func:`from_request` for the Timestamp field ``field`` of a request ``message``; ``path``
    is the field's path in the request. ``None`` when the field was not set."""
    return from_request(getattr(message, field), path, message.HasField(field))

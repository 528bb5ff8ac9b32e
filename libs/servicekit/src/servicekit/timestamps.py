"""Conversions between protobuf Timestamps and aware datetimes."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp


def to_proto(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC))
    return ts


def from_proto(value: Timestamp, present: bool = True) -> dt.datetime | None:
    """An aware UTC datetime, or ``None`` when the field was not set."""
    if not present or (value.seconds == 0 and value.nanos == 0):
        return None
    return value.ToDatetime(tzinfo=dt.UTC)

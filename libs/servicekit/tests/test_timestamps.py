"""Timestamps from requests: out-of-range values are INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from servicekit import timestamps
from servicekit.errors import InvalidArgument


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (timestamps.MAX_SECONDS + 1, 0),  # beyond 9999-12-31T23:59:59Z
        (2**62, 0),
        (timestamps.MIN_SECONDS - 1, 0),  # before 0001-01-01
        (-(2**62), 0),
        (1_700_000_000, 1_000_000_000),  # nanos of 1e9
        (1_700_000_000, -1),
        (0, -1),
        (0, 1_000_000_000),
    ],
)
def test_an_out_of_range_timestamp_names_its_field(seconds: int, nanos: int) -> None:
    value = Timestamp(seconds=seconds, nanos=nanos)
    with pytest.raises(InvalidArgument) as caught:
        timestamps.from_request(value, "measurements[2].effective_time")
    assert caught.value.reason == "INVALID_TIMESTAMP"
    assert [v.field for v in caught.value.field_violations()] == ["measurements[2].effective_time"]
    with pytest.raises((ValueError, OverflowError)):
        value.ToDatetime(tzinfo=dt.UTC)  # what the unchecked conversion would have raised


@pytest.mark.parametrize(
    ("seconds", "nanos", "expected"),
    [
        (timestamps.MIN_SECONDS, 0, dt.datetime(1, 1, 1, tzinfo=dt.UTC)),
        (
            timestamps.MAX_SECONDS,
            timestamps.MAX_NANOS,
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        ),
        (1_700_000_000, 5_000, dt.datetime(2023, 11, 14, 22, 13, 20, 5, tzinfo=dt.UTC)),
    ],
)
def test_the_edges_of_the_range_convert(seconds: int, nanos: int, expected: dt.datetime) -> None:
    assert timestamps.from_request(Timestamp(seconds=seconds, nanos=nanos), "t") == expected


def test_an_unset_timestamp_is_none() -> None:
    assert timestamps.from_request(Timestamp(), "t") is None
    assert timestamps.from_request(Timestamp(seconds=5), "t", present=False) is None

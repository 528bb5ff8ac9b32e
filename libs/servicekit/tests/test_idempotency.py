"""The request_id rules every service applies (AIP-155)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2

from servicekit import idempotency
from servicekit.errors import InvalidArgument


@dataclass
class Record:
    method: str
    resource_name: str
    fingerprint: str = "f1"


def test_a_new_request_id_replays_nothing() -> None:
    assert idempotency.replayed(None, "CreateThing", "f1") is None


def test_a_repeated_request_returns_the_first_result() -> None:
    record = Record("CreateThing", "things/1", "f1")
    assert idempotency.replayed(record, "CreateThing", "f1") == "things/1"


def test_a_request_id_reused_for_another_method_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        idempotency.replayed(Record("CreateThing", "things/1"), "CreateOther", "f1")
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert [v.field for v in caught.value.field_violations()] == ["request_id"]


def test_a_request_id_reused_for_a_different_request_is_refused_without_the_first_result() -> None:
    with pytest.raises(InvalidArgument) as caught:
        idempotency.replayed(Record("CreateThing", "things/1", "f1"), "CreateThing", "f2")
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert [v.field for v in caught.value.field_violations()] == ["request_id"]
    assert "things/1" not in caught.value.message


def test_the_fingerprint_ignores_the_request_id_and_nothing_else() -> None:
    first = error_details_pb2.RequestInfo(request_id="r-1", serving_data="patients/p-0001")
    same = error_details_pb2.RequestInfo(request_id="r-2", serving_data="patients/p-0001")
    other = error_details_pb2.RequestInfo(request_id="r-1", serving_data="patients/p-0002")
    assert idempotency.fingerprint_of(first) == idempotency.fingerprint_of(same)
    assert idempotency.fingerprint_of(first) != idempotency.fingerprint_of(other)
    assert len(idempotency.fingerprint_of(first)) == idempotency.FINGERPRINT_LENGTH
    assert first.request_id == "r-1"  # the caller's message is left alone


def test_the_fingerprint_is_stable_for_maps() -> None:
    a = struct_pb2.Struct()
    a.update({"x": 1, "y": 2, "z": 3})
    b = struct_pb2.Struct()
    b.update({"z": 3, "y": 2, "x": 1})
    assert idempotency.fingerprint_of(a) == idempotency.fingerprint_of(b)


def test_a_request_id_longer_than_can_be_stored_is_refused() -> None:
    idempotency.check("r" * idempotency.MAX_LENGTH)
    with pytest.raises(InvalidArgument) as caught:
        idempotency.check("r" * (idempotency.MAX_LENGTH + 1))
    assert caught.value.reason == "REQUEST_ID_TOO_LONG"

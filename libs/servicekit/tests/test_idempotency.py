"""The request_id rules every service applies (AIP-155)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from servicekit import idempotency
from servicekit.errors import InvalidArgument


@dataclass
class Record:
    method: str
    resource_name: str


def test_a_new_request_id_replays_nothing() -> None:
    assert idempotency.replayed(None, "CreateThing") is None


def test_a_repeated_request_id_returns_the_first_result() -> None:
    assert idempotency.replayed(Record("CreateThing", "things/1"), "CreateThing") == "things/1"


def test_a_request_id_reused_for_another_method_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        idempotency.replayed(Record("CreateThing", "things/1"), "CreateOther")
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert [v.field for v in caught.value.field_violations()] == ["request_id"]


def test_a_request_id_longer_than_can_be_stored_is_refused() -> None:
    idempotency.check("r" * idempotency.MAX_LENGTH)
    with pytest.raises(InvalidArgument) as caught:
        idempotency.check("r" * (idempotency.MAX_LENGTH + 1))
    assert caught.value.reason == "REQUEST_ID_TOO_LONG"

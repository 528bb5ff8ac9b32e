"""servicekit.idempotency.IdempotentRequest: replay and remember, once for every service."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest

from servicekit.auth import Principal
from servicekit.errors import InvalidArgument
from servicekit.idempotency import IdempotentRequest, RequestRecords, for_person

GP = Principal("dr-jansen", "carenet-kis", "organisations/gp", "organisations/cg", frozenset())
KIS = Principal(
    "kis-sa", "kis", "organisations/gp", "organisations/cg", frozenset(), on_behalf_of="u-1"
)


@dataclass
class Record:
    method: str
    resource_name: str
    fingerprint: str


@dataclass
class Repo:
    records: dict[tuple[str, str], Record] = field(default_factory=dict)

    def request_record(self, caller: str, request_id: str) -> Record | None:
        return self.records.get((caller, request_id))

    def add_request_record(
        self, caller: str, request_id: str, method: str, fingerprint: str, resource_name: str
    ) -> None:
        self.records[(caller, request_id)] = Record(method, resource_name, fingerprint)


def test_a_repeat_replays_and_a_reuse_is_refused() -> None:
    repo = Repo()
    records: RequestRecords = repo
    first = IdempotentRequest.of(GP, "r-1", "CreateThing", "fp")
    assert first.replayed(records) is None
    first.remember(records, "things/1")
    assert IdempotentRequest.of(GP, "r-1", "CreateThing", "fp").replayed(records) == "things/1"
    for other in (
        IdempotentRequest.of(GP, "r-1", "CreateThing", "other"),
        IdempotentRequest.of(GP, "r-1", "CreateOther", "fp"),
    ):
        with pytest.raises(InvalidArgument) as caught:
            other.replayed(records)
        assert caught.value.reason == "REQUEST_ID_REUSED"
    other_caller = Principal("dr-b", "kis", "", "", frozenset())
    assert IdempotentRequest.of(other_caller, "r-1", "CreateThing", "fp").replayed(records) is None


def test_no_request_id_records_nothing_and_a_long_one_is_refused() -> None:
    repo = Repo()
    none = IdempotentRequest.of(GP, "", "CreateThing", "fp")
    assert none.replayed(repo) is None
    none.remember(repo, "things/1")
    assert repo.records == {}
    with pytest.raises(InvalidArgument) as caught:
        IdempotentRequest.of(GP, "x" * 101, "CreateThing", "fp")
    assert caught.value.reason == "REQUEST_ID_TOO_LONG"


def test_a_delegate_fingerprint_covers_the_person_and_stored_form_applies() -> None:
    req = IdempotentRequest.of(KIS, "r-1", "CreateThing", "fp")
    assert req.fingerprint == for_person("fp", "u-1") != "fp"

    def keyed(fp: str) -> str:
        return hashlib.sha256(b"k" + fp.encode()).hexdigest()

    stored = IdempotentRequest.of(GP, "r-2", "CreateThing", "fp", stored=keyed)
    assert stored.fingerprint == keyed("fp")
    repo = Repo()
    stored.remember(repo, "things/2")
    assert repo.records[("dr-jansen", "r-2")].fingerprint == keyed("fp")
    again = IdempotentRequest.of(GP, "r-2", "CreateThing", "fp", stored=keyed)
    assert again.replayed(repo) == "things/2"


def test_from_the_request_message_the_id_and_a_fingerprint_without_it() -> None:
    from carenet.identity.v1 import identity_service_pb2 as rpc

    first = rpc.RegisterPatientRequest(request_id="r-9", patient_id="p-1")
    again = rpc.RegisterPatientRequest(request_id="r-other", patient_id="p-1")
    req = IdempotentRequest.from_message(GP, first, "RegisterPatient")
    assert (req.caller, req.request_id, req.method) == ("dr-jansen", "r-9", "RegisterPatient")
    assert req.fingerprint == IdempotentRequest.from_message(GP, again, "X").fingerprint
    other = rpc.RegisterPatientRequest(request_id="r-9", patient_id="p-2")
    assert IdempotentRequest.from_message(GP, other, "X").fingerprint != req.fingerprint

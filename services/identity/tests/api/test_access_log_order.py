"""Newest first (issue 11, security review of the running platform): a patient's privacy
view read the log oldest first and showed the last entries it had walked to, so that enough
refused questions by anyone hid a real read. ``order_by: "event_time desc"`` lists the
newest entries first; its pages stay stable while entries are appended."""

from __future__ import annotations

import grpc

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer

from .calls import fails, user_id
from .test_measurements_record_holder import _new_bsn

Stub = rpc_grpc.IdentityServiceStub
NEWEST = "event_time desc"


def _patient(stub: Stub, tokens: Tokens) -> str:
    return stub.RegisterPatient(
        rpc.RegisterPatientRequest(bsn=_new_bsn()),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=5,
    ).name


def _refused_questions(stub: Stub, tokens: Tokens, patient: str, count: int) -> None:
    """``count`` questions of the lifestyle provider, each refused and logged."""
    coach = bearer(tokens.user("coach.degroot"))
    question = rpc.AuthorizeRequest(
        patient=patient, data_category=pb.DATA_CATEGORY_CARE_PLAN, action=pb.ACTION_READ
    )
    for _ in range(count):
        assert stub.Authorize(question, metadata=coach, timeout=5).decision == pb.DECISION_DENY


def _list(
    stub: Stub, tokens: Tokens, patient: str, size: int, token: str = "", order: str = NEWEST
) -> rpc.ListAccessLogEntriesResponse:
    return stub.ListAccessLogEntries(
        rpc.ListAccessLogEntriesRequest(
            patient=patient, order_by=order, page_size=size, page_token=token
        ),
        metadata=bearer(tokens.user("auditor.dekker")),
        timeout=5,
    )


def _id(entry: pb.AccessLogEntry) -> int:
    return int(entry.name.removeprefix("accessLogEntries/"))


def test_a_flood_of_refused_questions_does_not_hide_the_latest_read(
    stub: Stub, tokens: Tokens
) -> None:
    """Sixty refused questions, then the practice reads: the first page of fifty, newest
    first, holds that read; the first page oldest first does not."""
    patient = _patient(stub, tokens)
    _refused_questions(stub, tokens, patient, 60)
    read = stub.Authorize(
        rpc.AuthorizeRequest(
            patient=patient, data_category=pb.DATA_CATEGORY_CARE_PLAN, action=pb.ACTION_READ
        ),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=5,
    )
    assert read.decision == pb.DECISION_PERMIT
    newest = _list(stub, tokens, patient, 50).access_log_entries
    assert [e.event for e in newest[:2]] == ["LIST_ACCESS_LOG", "AUTHORIZE"]
    assert newest[1].name == read.access_log_entry
    assert newest[1].user == user_id("dr.jansen")
    oldest = _list(stub, tokens, patient, 50, order="").access_log_entries
    assert read.access_log_entry not in {e.name for e in oldest}


def test_newest_first_pages_are_stable_while_entries_are_appended(
    stub: Stub, tokens: Tokens
) -> None:
    patient = _patient(stub, tokens)
    _refused_questions(stub, tokens, patient, 7)
    first = _list(stub, tokens, patient, 4)
    assert first.next_page_token
    _refused_questions(stub, tokens, patient, 3)  # appended while the reader pages
    seen = list(first.access_log_entries)
    token = first.next_page_token
    while token:
        page = _list(stub, tokens, patient, 4, token)
        seen.extend(page.access_log_entries)
        token = page.next_page_token
    ids = [_id(e) for e in seen]
    assert ids == sorted(ids, reverse=True)  # newest first, no entry twice
    # Everything up to the first page's read, nothing appended after it: the reading, the
    # seven questions and the registration.
    assert len(ids) == 9
    assert seen[-1].event == "REGISTER_PATIENT"
    # The same entries as oldest first, reversed.
    oldest = _list(stub, tokens, patient, 1000, order="event_time").access_log_entries
    assert [_id(e) for e in oldest if _id(e) <= ids[0]] == ids[::-1]


def test_the_patient_reads_their_newest_entry_first(stub: Stub, tokens: Tokens) -> None:
    """The patient's own reading is the newest entry of their log (one page of one)."""
    me = bearer(tokens.patient("pat.yilmaz"))
    (entry,) = stub.ListAccessLogEntries(
        rpc.ListAccessLogEntriesRequest(patient="patients/p-0002", order_by=NEWEST, page_size=1),
        metadata=me,
        timeout=5,
    ).access_log_entries
    assert (entry.event, entry.reason, entry.patient) == (
        "LIST_ACCESS_LOG",
        "LOG_READER",
        "patients/p-0002",
    )


def test_an_order_other_than_event_time_is_invalid(stub: Stub, tokens: Tokens) -> None:
    auditor = bearer(tokens.user("auditor.dekker"))
    for order in ("event_time sideways", "user", "id desc"):
        refused = fails(
            stub.ListAccessLogEntries,
            rpc.ListAccessLogEntriesRequest(patient="patients/p-0001", order_by=order),
            auditor,
        )
        assert (refused.code, refused.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ORDER_BY",
        )
        assert refused.field_violations[0][0] == "order_by"


def test_a_page_token_continues_only_the_order_it_was_made_for(stub: Stub, tokens: Tokens) -> None:
    patient = _patient(stub, tokens)
    _refused_questions(stub, tokens, patient, 3)
    token = _list(stub, tokens, patient, 2, order="").next_page_token
    assert token
    refused = fails(
        stub.ListAccessLogEntries,
        rpc.ListAccessLogEntriesRequest(
            patient=patient, order_by=NEWEST, page_size=2, page_token=token
        ),
        bearer(tokens.user("auditor.dekker")),
    )
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )

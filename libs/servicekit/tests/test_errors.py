"""A status stays within what gRPC carries in trailers, for every service."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2

from servicekit.errors import (
    MAX_DESCRIPTION_CHARS,
    MAX_FIELD_CHARS,
    MAX_FIELD_VIOLATIONS,
    MAX_MESSAGE_CHARS,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Violations,
    to_status,
)


def _bad_request(status: object) -> error_details_pb2.BadRequest:
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details)  # type: ignore[attr-defined]
    return bad


def test_at_most_ten_violations_are_named_and_the_rest_counted() -> None:
    v = Violations()
    for i in range(50):
        v.add(f"offer.languages[{i}]", "must be an ISO 639 code", "INVALID_LANGUAGE")
    try:
        v.raise_if_any()
    except InvalidArgument as error:
        status = to_status(error, "test.carenet")
    fields = [f.field for f in _bad_request(status).field_violations]
    assert fields == [f"offer.languages[{i}]" for i in range(MAX_FIELD_VIOLATIONS)]
    assert status.message.endswith("; and 40 more")
    assert "offer.languages[10]" not in status.message


def test_every_part_of_a_status_has_a_bounded_length() -> None:
    error = InvalidArgument(
        [FieldViolation("f" * 5000, "d" * 5000, "R")] * 3, message="m" * 100_000
    )
    status = to_status(error, "test.carenet")
    assert len(status.message) <= MAX_MESSAGE_CHARS
    for violation in _bad_request(status).field_violations:
        assert len(violation.field) <= MAX_FIELD_CHARS
        assert len(violation.description) <= MAX_DESCRIPTION_CHARS
    assert status.ByteSize() < 4096
    assert len(to_status(PermissionDenied("x" * 10_000), "d").message) <= MAX_MESSAGE_CHARS


def test_a_short_status_is_left_as_it_is() -> None:
    error = InvalidArgument.single("request_id", "at most 100 characters", "REQUEST_ID_TOO_LONG")
    status = to_status(error, "test.carenet")
    assert status.message == "request_id: at most 100 characters"
    assert [f.field for f in _bad_request(status).field_violations] == ["request_id"]


def test_the_shared_refusals_carry_their_code_and_reason() -> None:
    from servicekit.errors import EtagMismatch, RoleNotPermitted

    role = to_status(RoleNotPermitted("only a clinician refers"), "test.carenet")
    etag = to_status(EtagMismatch("read it again"), "test.carenet")
    assert role.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert etag.code == grpc.StatusCode.ABORTED.value[0]
    for status, reason in ((role, "ROLE_NOT_PERMITTED"), (etag, "ETAG_MISMATCH")):
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info) and info.reason == reason


class _OfferNotFound(NotFound, reason="OFFER_NOT_FOUND"): ...


class _OfferGone(_OfferNotFound): ...


def test_an_error_declared_with_a_reason_carries_it_and_so_do_its_subclasses() -> None:
    for error in (_OfferNotFound("no such offer"), _OfferGone("no such offer")):
        status = to_status(error, "test.carenet")
        info = error_details_pb2.ErrorInfo()
        assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
        assert status.details[0].Unpack(info) and info.reason == "OFFER_NOT_FOUND"
    assert NotFound("x").reason == "NOT_FOUND"
    assert _OfferNotFound("x", reason="OTHER").reason == "OTHER"

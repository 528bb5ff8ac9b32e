"""The client's pure parts: paging, settings, error decoding, retries, the CSV reader."""

from __future__ import annotations

import io
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from carenet_client import CarenetError, RetryPolicy, Settings, from_rpc_error, pages
from carenet_client.channels import call_with_retry
from carenet_client.measurements import read_rows


def test_pages_are_fetched_lazily_and_stop_at_the_limit() -> None:
    calls: list[str] = []
    book = {"": ([1, 2], "b"), "b": ([3, 4], "c"), "c": ([5], "")}

    def fetch(token: str) -> tuple[list[int], str]:
        calls.append(token)
        return book[token]

    assert list(pages(fetch)) == [1, 2, 3, 4, 5]
    calls.clear()
    assert list(pages(fetch, limit=3)) == [1, 2, 3]
    assert calls == ["", "b"], "no page beyond the limit is fetched"


def test_settings_from_the_environment_win_over_the_profile() -> None:
    env = {
        "CARENET_ENDPOINT": "gw:443",
        "CARENET_REFERRAL_TARGET": "ref:50052",
        "CARENET_CLIENT_ID": "kis",
        "CARENET_PLAINTEXT": "true",
        "CARENET_TIMEOUT": "3.5",
    }
    settings = Settings.from_env(env).merged(
        {"client_id": "other", "client_secret": "s", "targets": {"referral": "x", "outcomes": "o"}}
    )
    assert settings.client_id == "kis"
    assert settings.client_secret == "s"
    assert settings.plaintext
    assert settings.timeout == 3.5
    assert settings.target("referral") == "ref:50052"
    assert settings.target("outcomes") == "o"
    assert settings.target("identity") == "gw:443"
    with pytest.raises(ValueError, match="CARENET_CAREPLAN_TARGET"):
        Settings().target("careplan")


class FakeCall(grpc.RpcError):
    """A failed call as grpcio raises it (unit tests only)."""

    def __init__(self, code: grpc.StatusCode, status: status_pb2.Status | None = None) -> None:
        self._code, self._status = code, status

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._status.message if self._status else "transport"

    def trailing_metadata(self) -> Any:
        if self._status is None:
            return ()
        return (("grpc-status-details-bin", self._status.SerializeToString()),)


def packed(message: Any) -> any_pb2.Any:
    found = any_pb2.Any()
    found.Pack(message)
    return found


def test_a_status_decodes_to_reason_metadata_and_field_violations() -> None:
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT,
        message="referral.reason: is required",
        details=[
            packed(
                error_details_pb2.ErrorInfo(
                    reason="REASON_REQUIRED", domain="referral.carenet", metadata={"k": "v"}
                )
            ),
            packed(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field="referral.reason", description="is required"
                        )
                    ]
                )
            ),
        ],
    )
    error = from_rpc_error(FakeCall(grpc.StatusCode.INVALID_ARGUMENT, status))
    assert (error.code, error.reason, error.domain) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "REASON_REQUIRED",
        "referral.carenet",
    )
    assert error.metadata == {"k": "v"}
    assert [(v.field, v.description) for v in error.field_violations] == [
        ("referral.reason", "is required")
    ]
    bare = from_rpc_error(FakeCall(grpc.StatusCode.DEADLINE_EXCEEDED))
    assert (bare.reason, bare.message) == ("", "transport")


def test_only_unavailable_is_retried_and_each_attempt_gets_what_is_left() -> None:
    seen: list[float | None] = []
    waits: list[float] = []

    def flaky(remaining: float | None) -> str:
        seen.append(remaining)
        if len(seen) < 3:
            raise FakeCall(grpc.StatusCode.UNAVAILABLE)
        return "ok"

    policy = RetryPolicy(max_attempts=5, initial_backoff=0.1, jitter=0)
    assert call_with_retry(flaky, timeout=10, policy=policy, sleep=waits.append) == "ok"
    assert waits == [0.1, 0.2]
    left = [r for r in seen if r is not None]
    assert len(left) == 3
    assert all(0 < r <= 10 for r in left)
    assert left == sorted(left, reverse=True), "one deadline over all attempts"

    def refused(remaining: float | None) -> str:
        raise FakeCall(grpc.StatusCode.FAILED_PRECONDITION)

    waits.clear()
    with pytest.raises(CarenetError) as error:
        call_with_retry(refused, timeout=10, policy=policy, sleep=waits.append)
    assert error.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert waits == []


def test_the_csv_needs_every_column_and_sends_unreadable_rows_for_the_server_to_name() -> None:
    with pytest.raises(ValueError, match="source_record_id"):
        list(
            read_rows(io.StringIO("patient,code,value,unit,measure_time,source_kind,source_org\n"))
        )
    text = (
        "patient,code,value,unit,measure_time,source_kind,source_org,source_record_id\n"
        "p-0001,HBA1C,abc,mmol/mol,yesterday,lab,gp-de-linde,r1\n"
    )
    [(record, row)] = list(read_rows(io.StringIO(text)))
    assert record["value"] == "abc"
    assert row.patient == "patients/p-0001"
    assert row.source.organisation == "organisations/gp-de-linde"
    assert row.source.kind == 2  # LAB, case-insensitive
    assert row.value != row.value, "an unreadable value is sent as NaN, for OUT_OF_RANGE"
    assert not row.HasField("measure_time")

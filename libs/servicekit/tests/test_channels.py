"""Retries of outgoing calls: on UNAVAILABLE only, a bounded number of times, within one
overall deadline."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from servicekit.channels import RETRY_ATTEMPTS, with_retries


class _Failure(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def _failing(
    codes: list[grpc.StatusCode], result: str = "ok"
) -> tuple[list[float], Callable[[float], str]]:
    timeouts: list[float] = []

    def call(remaining: float) -> str:
        timeouts.append(remaining)
        if codes:
            raise _Failure(codes.pop(0))
        return result

    return timeouts, call


def test_an_unavailable_call_is_retried_until_it_answers() -> None:
    clock = _Clock()
    timeouts, call = _failing([grpc.StatusCode.UNAVAILABLE] * 2)
    assert with_retries(call, 5.0, sleep=clock.sleep, clock=clock) == "ok"
    assert len(timeouts) == 3
    assert all(0 <= p <= 0.4 for p in clock.pauses)
    assert timeouts[-1] == pytest.approx(5.0 - sum(clock.pauses))  # one overall deadline


def test_it_gives_up_after_the_last_attempt() -> None:
    clock = _Clock()
    timeouts, call = _failing([grpc.StatusCode.UNAVAILABLE] * 10)
    with pytest.raises(grpc.RpcError):
        with_retries(call, 60.0, sleep=clock.sleep, clock=clock)
    assert len(timeouts) == RETRY_ATTEMPTS


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
    ],
)
def test_other_failures_are_not_retried(code: grpc.StatusCode) -> None:
    clock = _Clock()
    timeouts, call = _failing([code])
    with pytest.raises(grpc.RpcError):
        with_retries(call, 5.0, sleep=clock.sleep, clock=clock)
    assert len(timeouts) == 1


def test_no_retry_waits_past_the_deadline() -> None:
    clock = _Clock()
    _timeouts, call = _failing([grpc.StatusCode.UNAVAILABLE] * 10)
    with pytest.raises(grpc.RpcError):
        with_retries(call, 0.05, sleep=clock.sleep, clock=clock)
    assert clock.now < 0.05

"""Calls in tests: a server made in the test's process, served on a channel (:func:`serving`),
and a failed call's ``google.rpc.Status`` read back (:func:`status_of`, :func:`failure`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from servicekit.server import RunningServer


@dataclass(frozen=True)
class Failure:
    code: grpc.StatusCode
    message: str
    reason: str
    domain: str
    error_infos: int
    field_violations: tuple[str, ...]


def status_of(call: Callable[[], object]) -> status_pb2.Status:
    """The whole ``google.rpc.Status`` (code, message, details) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    status = rpc_status.from_call(caught.value)
    assert status is not None, f"no google.rpc.Status on {caught.value}"
    return status


def failure(error: grpc.RpcError) -> Failure:
    """The code, the one ErrorInfo and the BadRequest fields of a failed call."""
    call: grpc.Call = error  # type: ignore[assignment]  # every RpcError raised by a stub is a Call
    status = rpc_status.from_call(call)
    assert status is not None, f"no google.rpc.Status on {call.code()}: {call.details()}"
    infos: list[error_details_pb2.ErrorInfo] = []
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
    return Failure(
        code=call.code(),
        message=status.message,
        reason=infos[0].reason if infos else "",
        domain=infos[0].domain if infos else "",
        error_infos=len(infos),
        field_violations=tuple(fields),
    )


@contextmanager
def serving(running: RunningServer, grace: float = 0) -> Iterator[grpc.Channel]:
    """Starts a server made in this process (``create_server``) and yields a channel to its
    port; stops it (``grace`` seconds for calls in flight) when the block ends."""
    running.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield channel
    finally:
        running.stop(grace).wait()

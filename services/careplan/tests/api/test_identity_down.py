"""Fail closed: when identity cannot be asked, nothing is read or written."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import grpc
import pytest

from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from careplan.main import build_deps
from careplan.server import create_server
from servicekit.auth import verifier_for
from servicekit.channels import ServiceAccountTokens
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.rpc import failure, serving

from ..conftest import careplan_settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def orphan_stub(careplan_db: str, local_idp: LocalIdp) -> Iterator[rpc_grpc.CarePlanServiceStub]:
    settings = careplan_settings(
        careplan_db, local_idp, f"127.0.0.1:{_closed_port()}", call_deadline_seconds=2.0
    )
    tokens = ServiceAccountTokens(
        issuer=local_idp.issuer, client_id="svc-careplan", client_secret="svc-careplan-secret"
    )
    running = create_server(settings, build_deps(settings, tokens), verifier_for(settings))
    with serving(running, grace=1) as channel:
        yield rpc_grpc.CarePlanServiceStub(channel)


def test_a_read_is_refused_as_unavailable_when_identity_is_down(
    orphan_stub: rpc_grpc.CarePlanServiceStub, tokens: Tokens
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        orphan_stub.GetCarePlan(
            rpc.GetCarePlanRequest(name="patients/p-0001/carePlan"),
            metadata=bearer(tokens.patient("pat.dewit")),
            timeout=15,
        )
    fail = failure(caught.value)
    assert (fail.code, fail.reason, fail.error_infos) == (
        grpc.StatusCode.UNAVAILABLE,
        "IDENTITY_UNAVAILABLE",
        1,
    )

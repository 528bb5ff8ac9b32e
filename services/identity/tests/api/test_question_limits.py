"""Authorize and BatchAuthorize take the same question: the same purpose limit (200
characters), refused the same way before anything is decided or logged."""

from __future__ import annotations

import grpc
import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer

from .calls import fails

Stub = rpc_grpc.IdentityServiceStub


def _single(purpose: str) -> rpc.AuthorizeRequest:
    return rpc.AuthorizeRequest(
        patient="patients/p-0001",
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        purpose=purpose,
    )


def _batch(purpose: str) -> rpc.BatchAuthorizeRequest:
    return rpc.BatchAuthorizeRequest(
        patients=["patients/p-0001"],
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        purpose=purpose,
    )


@pytest.mark.parametrize("method", ["Authorize", "BatchAuthorize"])
def test_a_purpose_of_201_characters_is_refused_by_both(
    stub: Stub, tokens: Tokens, method: str
) -> None:
    service = bearer(tokens.client("svc-careplan"))
    request = _single if method == "Authorize" else _batch
    fail = fails(getattr(stub, method), request("p" * 201), service)
    assert (fail.code, fail.reason, fail.field_violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "PURPOSE_TOO_LONG",
        (("purpose", "at most 200 characters", "PURPOSE_TOO_LONG"),),
    )
    # 200 characters are a question both answer.
    getattr(stub, method)(request("p" * 200), metadata=service, timeout=10)

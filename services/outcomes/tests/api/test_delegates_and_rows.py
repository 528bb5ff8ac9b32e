"""A practice's KIS acting for its GP (a delegate client naming the person), and a NUL in one
ingest row, over a real server with real tokens and the real identity."""

from __future__ import annotations

import grpc
import jwt
import pytest

from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from servicekit.auth import ON_BEHALF_OF_HEADER
from testkit.fixtures import Tokens, bearer
from testkit.rpc import failure

from .support import enrol, row


def _sub(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def _enrol(stub: rpc_grpc.OutcomesServiceStub, tokens: Tokens, patient: str) -> None:
    enrol(stub, bearer(tokens.user("dr.jansen")), patient)


def test_a_kis_acting_for_its_gp_ingests_and_reads_as_that_gp(
    stub: rpc_grpc.OutcomesServiceStub, tokens: Tokens
) -> None:
    """Without the person resolved, the KIS's own roles (delegate) may not submit
    measurements; with it, the call runs as dr.jansen of the coordinating practice."""
    _enrol(stub, tokens, "p-0001")
    gp = _sub(tokens.user("dr.jansen"))
    metadata = (*bearer(tokens.client("carenet-kis")), (ON_BEHALF_OF_HEADER, gp))
    reply = stub.IngestMeasurements(
        iter([rpc.IngestMeasurementsRequest(rows=[row("p-0001", "kis-for-jansen-1")])]),
        metadata=metadata,
        timeout=30,
    )
    assert (reply.accepted + reply.duplicates, reply.rejected) == (1, 0)
    listed = stub.ListMeasurements(
        rpc.ListMeasurementsRequest(parent="patients/p-0001"), metadata=metadata, timeout=10
    )
    assert listed.measurements


def test_a_kis_naming_a_person_of_another_practice_is_refused(
    stub: rpc_grpc.OutcomesServiceStub, tokens: Tokens
) -> None:
    other = _sub(tokens.user("dr.devries"))
    metadata = (*bearer(tokens.client("carenet-kis")), (ON_BEHALF_OF_HEADER, other))
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListMeasurements(
            rpc.ListMeasurementsRequest(parent="patients/p-0001"), metadata=metadata, timeout=10
        )
    fail = failure(caught.value)
    assert (fail.code, fail.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ON_BEHALF_OF_NOT_ALLOWED",
    )


def test_a_nul_in_one_ingest_row_rejects_that_row_alone(
    stub: rpc_grpc.OutcomesServiceStub, tokens: Tokens
) -> None:
    """The batch is not refused as a whole by the server's generic NUL guard: outcomes checks
    each row's strings itself, so the other rows are kept."""
    _enrol(stub, tokens, "p-0001")
    rows = [row("p-0001", "nul-ok-1"), row("p-0001", "nul-bad\x00id"), row("p-0001", "nul-ok-2")]
    reply = stub.IngestMeasurements(
        iter([rpc.IngestMeasurementsRequest(rows=rows)]),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=30,
    )
    assert (reply.accepted, reply.rejected) == (2, 1)
    assert [(r.row, r.reason) for r in reply.results] == [(1, "INVALID_SOURCE_RECORD_ID")]

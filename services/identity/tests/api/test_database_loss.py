"""A database connection lost while idle (a failover, a restart, an idle timeout) fails one
call with UNAVAILABLE and reason DATABASE_UNAVAILABLE, which clients retry; the next call
works. Checked on the warm Authorize path, whose statement runs on a driver connection."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import psycopg
import pytest
from sqlalchemy.engine import make_url

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer, running_identity
from testkit.idp import LocalIdp
from testkit.rpc import failure

REQUEST = rpc.AuthorizeRequest(
    patient="patients/p-0001",
    data_category=pb.DATA_CATEGORY_CARE_PLAN,
    action=pb.ACTION_READ,
)


@pytest.fixture
def server(local_idp: LocalIdp) -> Iterator[tuple[rpc_grpc.IdentityServiceStub, str]]:
    """A server of its own: the test cuts its database connections."""
    with (
        running_identity(local_idp, "identity_loss") as identity,
        grpc.insecure_channel(identity.target) as channel,
    ):
        yield rpc_grpc.IdentityServiceStub(channel), identity.database_url


def _cut_connections(url: str) -> int:
    database = make_url(url).database
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_lost_connection_fails_one_call_with_unavailable_and_the_next_works(
    server: tuple[rpc_grpc.IdentityServiceStub, str], tokens: Tokens
) -> None:
    stub, url = server
    metadata = bearer(tokens.user("dr.jansen"))
    for _ in range(2):  # the second is warm: its append holds an idle driver connection
        assert stub.Authorize(REQUEST, metadata=metadata, timeout=5).decision == pb.DECISION_PERMIT
    assert _cut_connections(url) >= 1

    with pytest.raises(grpc.RpcError) as caught:
        stub.Authorize(REQUEST, metadata=metadata, timeout=5)
    lost = failure(caught.value)

    assert lost.code == grpc.StatusCode.UNAVAILABLE
    assert lost.reason == "DATABASE_UNAVAILABLE"
    assert stub.Authorize(REQUEST, metadata=metadata, timeout=5).decision == pb.DECISION_PERMIT

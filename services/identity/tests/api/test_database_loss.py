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
from identity import demo
from identity.config import Settings
from identity.main import deps_for
from identity.server import create_server
from servicekit.auth import verifier_for
from servicekit.db import make_engine
from servicekit.migrations import upgrade
from testkit.database import fresh_database
from testkit.fixtures import IDENTITY_TEST_PEPPER, Tokens, bearer
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
    with fresh_database("identity_loss") as url:
        upgrade("identity.migrations", url)
        engine = make_engine(url)
        deps = deps_for(engine, IDENTITY_TEST_PEPPER.encode())
        demo.seed(deps)
        settings = Settings(
            database_url=url,
            oidc_issuer=local_idp.issuer,
            grpc_host="127.0.0.1",
            grpc_port=0,
            bsn_pepper=IDENTITY_TEST_PEPPER,  # type: ignore[arg-type]
        )
        running = create_server(settings, deps, verifier_for(settings))
        running.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                yield rpc_grpc.IdentityServiceStub(channel), url
        finally:
            running.stop(0).wait()
            engine.dispose()


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

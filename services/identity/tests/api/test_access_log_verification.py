"""VerifyAccessLog over a real server whose log has chain keys and a checkpoint store: an
auditor learns which stripe is broken and why, and nothing about any patient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.access_log_checkpoints import publish_checkpoint
from identity.config import Settings
from identity.main import deps_for
from identity.server import create_server
from servicekit.auth import verifier_for
from servicekit.db import make_engine
from servicekit.migrations import upgrade
from testkit.database import fresh_database
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.rpc import serving

from ..log_keys import PEPPER, KeyFiles, append, cut_stripe, superuser, without_triggers


@pytest.fixture
def keyed_server(
    tmp_path: Path, local_idp: LocalIdp
) -> Iterator[tuple[rpc_grpc.IdentityServiceStub, str]]:
    """A server whose stripes 0 and 1 hold 6 and 4 entries, and a checkpoint of them."""
    with fresh_database("identity_verify_api") as url:
        upgrade("identity.migrations", url)
        engine = make_engine(url)
        keys = KeyFiles(tmp_path)
        keys.add_chain_key("chain-1")
        keys.add_signing_key("sign-1")
        deps = deps_for(engine, PEPPER, log_stripes=2, access_log=keys.trust("chain-1", "sign-1"))
        append(deps, 0, 6)
        append(deps, 1, 4)
        publish_checkpoint(deps.log_trust(), deps.uow, deps.clock)
        settings = Settings(
            database_url=url,
            oidc_issuer=local_idp.issuer,
            grpc_host="127.0.0.1",
            grpc_port=0,
            bsn_pepper=PEPPER.decode(),  # type: ignore[arg-type]
        )
        running = create_server(settings, deps, verifier_for(settings))
        try:
            with serving(running) as channel:
                yield rpc_grpc.IdentityServiceStub(channel), url
        finally:
            engine.dispose()


def test_verify_access_log_names_the_stripe_and_the_reason_of_a_deleted_tail(
    keyed_server: tuple[rpc_grpc.IdentityServiceStub, str], tokens: Tokens
) -> None:
    stub, url = keyed_server
    auditor = bearer(tokens.user("auditor.dekker"))
    intact = stub.VerifyAccessLog(rpc.VerifyAccessLogRequest(), metadata=auditor, timeout=30)
    assert intact.intact
    assert intact.entries_checked == 10
    assert intact.checkpoints_verified == 1
    assert intact.checkpoint_store_configured
    assert intact.HasField("latest_checkpoint_time")
    assert not intact.problems
    with superuser(url) as conn:
        without_triggers(conn)
        cut_stripe(conn, 1, keep=2)
        conn.commit()
    broken = stub.VerifyAccessLog(rpc.VerifyAccessLogRequest(), metadata=auditor, timeout=30)
    assert not broken.intact
    assert list(broken.broken_stripes) == [1]
    [problem] = broken.problems
    assert problem.HasField("stripe") and problem.stripe == 1
    assert problem.reason == "TAIL_DELETED"
    assert problem.sequence == 4
    assert problem.checkpoint.startswith("checkpoint-")
    assert problem.entry == ""
    # Positions and checkpoint names only: no patient, user or organisation.
    for identifying in (b"p-0001", b"gp-user", b"gp-de-linde", b"cg-zuidoost"):
        assert identifying not in broken.SerializeToString()


def test_only_auditors_and_care_group_admins_may_verify(
    keyed_server: tuple[rpc_grpc.IdentityServiceStub, str], tokens: Tokens
) -> None:
    stub, _url = keyed_server
    with pytest.raises(grpc.RpcError) as refused:
        stub.VerifyAccessLog(
            rpc.VerifyAccessLogRequest(), metadata=bearer(tokens.user("dr.jansen")), timeout=30
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

"""identity's domain counters on a real server in this process (a migrated, demo-seeded
database, chain keys and a checkpoint store), read back through an in-process metric reader:
Authorize and BatchAuthorize decisions by decision and basis, access-log appends, and
verification results by result (what the alert CarenetAccessLogVerificationFailed reads)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.access_log_checkpoints import publish_checkpoint
from identity.config import Settings
from identity.main import deps_for
from identity.server import create_server
from servicekit import metrics as sk_metrics
from servicekit.auth import verifier_for
from servicekit.db import make_engine
from testkit.database import fresh_database
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.metrics import MetricReadings, reading_domain_metrics
from testkit.rpc import serving

from ..log_keys import PEPPER, KeyFiles, cut_stripe, superuser, without_triggers

Stub = rpc_grpc.IdentityServiceStub


def _cli(command: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "identity.main", command],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def keyed(tmp_path: Path, local_idp: LocalIdp) -> Iterator[tuple[Stub, str]]:
    with fresh_database("identity_metrics") as url:
        keys = KeyFiles(tmp_path)
        keys.add_chain_key("chain-1")
        keys.add_signing_key("sign-1")
        values = {
            "DATABASE_URL": url,
            "OIDC_ISSUER": local_idp.issuer,
            "BSN_PEPPER": PEPPER.decode(),
            "ACCESS_LOG_STRIPES": "2",
            "ACCESS_LOG_HMAC_KEYS_DIR": str(keys.hmac_dir),
            "ACCESS_LOG_HMAC_KEY_ID": "chain-1",
        }
        env = {f"IDENTITY_{k}": v for k, v in values.items()}
        _cli("migrate", env)
        _cli("seed-demo", env)
        engine = make_engine(url)
        deps = deps_for(engine, PEPPER, log_stripes=2, access_log=keys.trust("chain-1", "sign-1"))
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


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch, keyed: tuple[Stub, str]) -> Iterator[MetricReadings]:
    """The process's domain metrics, read by this test alone (installed once the server is up
    and seeded, so that only the test's calls count)."""
    with reading_domain_metrics(monkeypatch) as readings:
        yield readings


def _care_plan(holder: str) -> rpc.AuthorizeRequest:
    return rpc.AuthorizeRequest(
        patient="patients/p-0001",
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        record_holder=f"organisations/{holder}",
    )


def test_decisions_appends_and_verifications_are_counted(
    keyed: tuple[Stub, str], reader: MetricReadings, tokens: Tokens
) -> None:
    stub, url = keyed
    jansen = bearer(tokens.user("dr.jansen"))
    for _ in range(2):
        permit = stub.Authorize(_care_plan("gp-de-linde"), metadata=jansen, timeout=10)
        assert (permit.decision, permit.basis) == (pb.DECISION_PERMIT, pb.BASIS_CARE_RELATIONSHIP)
    deny = stub.Authorize(
        _care_plan("gli-beweegfit"), metadata=bearer(tokens.user("coach.degroot")), timeout=10
    )
    assert deny.decision == pb.DECISION_DENY
    batch = stub.BatchAuthorize(
        rpc.BatchAuthorizeRequest(
            patients=["patients/p-0001", "patients/p-0003", "patients/nobody"],
            data_category=pb.DATA_CATEGORY_MEASUREMENTS,
            action=pb.ACTION_CREATE,
        ),
        metadata=jansen,
        timeout=10,
    )
    assert [d.decision for d in batch.decisions].count(pb.DECISION_DENY) == 2
    with pytest.raises(grpc.RpcError):  # refused before any decision: nothing counted
        stub.Authorize(rpc.AuthorizeRequest(patient="patients/p-0001"), metadata=jansen)

    assert reader.counts(sk_metrics.AUTHORIZE_DECISIONS) == {
        (("basis", "care-relationship"), ("decision", "permit")): 3,
        (("basis", "none"), ("decision", "deny")): 3,
    }
    assert reader.counts(sk_metrics.ACCESS_LOG_APPENDS) == {(): 6}

    auditor = bearer(tokens.user("auditor.dekker"))
    assert stub.VerifyAccessLog(rpc.VerifyAccessLogRequest(), metadata=auditor, timeout=30).intact
    with superuser(url) as conn:
        without_triggers(conn)
        cut_stripe(conn, 0, keep=1)  # the seeded entries, under the checkpoint
        conn.commit()
    broken = stub.VerifyAccessLog(rpc.VerifyAccessLogRequest(), metadata=auditor, timeout=30)
    assert not broken.intact
    reasons = {problem.reason for problem in broken.problems}
    assert reasons
    assert reader.counts(sk_metrics.ACCESS_LOG_VERIFICATIONS) == {
        (("result", "ok"),): 1,
        **{(("result", reason),): 1 for reason in reasons},
    }

"""An insider cuts the access log's tail while identity is down, and identity is started
again: the cut entries were written after the newest checkpoint, by a process that is gone,
and the restarted process never saw them. The head journal still names them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.access_log_trust import Checkpoint
from testkit.database import fresh_database
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess

from ..log_keys import PEPPER, KeyFiles, cut_stripe, superuser, without_triggers

pytestmark = pytest.mark.slow


def _env(url: str, issuer: str, keys: KeyFiles, journal_seconds: str) -> dict[str, str]:
    values = {
        "DATABASE_URL": url,
        "OIDC_ISSUER": issuer,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": "0",
        "BSN_PEPPER": PEPPER.decode(),
        "ACCESS_LOG_STRIPES": "2",
        "ACCESS_LOG_HMAC_KEYS_DIR": str(keys.hmac_dir),
        "ACCESS_LOG_HMAC_KEY_ID": "chain-1",
        "ACCESS_LOG_SIGNING_KEY_FILE": str(keys.root / "signing" / "sign-1.pem"),
        "ACCESS_LOG_SIGNING_KEY_ID": "sign-1",
        "ACCESS_LOG_PUBLIC_KEYS_DIR": str(keys.public_dir),
        "ACCESS_LOG_CHECKPOINT_DIR": str(keys.checkpoint_dir),
        # No checkpoint between the one at start and the cut.
        "ACCESS_LOG_CHECKPOINT_EVERY_SECONDS": "300",
        "ACCESS_LOG_JOURNAL_EVERY_SECONDS": journal_seconds,
    }
    return {f"IDENTITY_{k}": v for k, v in values.items()}


def _cli(command: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "identity.main", command],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def identity_down(tmp_path: Path, local_idp: LocalIdp) -> Iterator[tuple[str, KeyFiles, str]]:
    with fresh_database("identity_restart") as url:
        keys = KeyFiles(tmp_path)
        keys.add_chain_key("chain-1")
        keys.add_signing_key("sign-1")
        env = _env(url, local_idp.issuer, keys, "0.2")
        _cli("migrate", env)
        _cli("seed-demo", env)
        yield url, keys, local_idp.issuer


def _authorize(target: str, token: str, count: int) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = rpc_grpc.IdentityServiceStub(channel)
        for _ in range(count):
            stub.Authorize(
                rpc.AuthorizeRequest(
                    patient="patients/p-0001",
                    data_category=pb.DATA_CATEGORY_CARE_PLAN,
                    action=pb.ACTION_READ,
                ),
                metadata=bearer(token),
                timeout=10,
            )


def _verify(target: str, token: str) -> rpc.VerifyAccessLogResponse:
    with grpc.insecure_channel(target) as channel:
        reply: rpc.VerifyAccessLogResponse = rpc_grpc.IdentityServiceStub(channel).VerifyAccessLog(
            rpc.VerifyAccessLogRequest(), metadata=bearer(token), timeout=30
        )
        return reply


def _heads(url: str) -> dict[int, int]:
    with superuser(url) as conn:
        rows = conn.execute("SELECT id, last_sequence FROM access_log_head").fetchall()
    return {int(str(r["id"])): int(str(r["last_sequence"])) for r in rows}


def _wait_journaled(keys: KeyFiles, heads: dict[int, int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        named: dict[int, int] = {}
        for segment in keys.checkpoint_dir.glob("journal-*.jsonl"):
            for line in segment.read_bytes().splitlines():
                for head in Checkpoint.parse(line).heads:
                    named[head.stripe] = max(named.get(head.stripe, 0), head.sequence)
        if all(named.get(stripe, 0) >= sequence for stripe, sequence in heads.items()):
            return
        assert time.monotonic() < deadline, (named, heads)
        time.sleep(0.1)


def _cut_tail(url: str, count: int) -> tuple[int, int]:
    """As a superuser, the last ``count`` entries of the longest stripe go, and its head row
    is moved back: the keyed chain that remains is intact. Returns (stripe, first cut)."""
    heads = _heads(url)
    stripe = max(heads, key=lambda s: heads[s])
    keep = heads[stripe] - count
    with superuser(url) as conn:
        without_triggers(conn)
        cut_stripe(conn, stripe, keep=keep)
        conn.commit()
    return stripe, keep + 1


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_a_tail_cut_while_identity_was_down_is_reported_after_the_restart(
    identity_down: tuple[str, KeyFiles, str], tokens: Tokens, stop: signal.Signals
) -> None:
    url, keys, issuer = identity_down
    env = _env(url, issuer, keys, "0.2")
    gp, auditor = tokens.user("dr.jansen"), tokens.user("auditor.dekker")
    first = ServiceProcess("identity", env).start()
    try:
        assert _verify(first.target, auditor).intact
        _authorize(first.target, gp, 12)
        # What an insider cannot cut any more: heads a journal record names (within one
        # journal interval of their commit).
        _wait_journaled(keys, _heads(url))
    finally:
        # Killed: no last checkpoint and no last journal record, only what the journal held.
        first.stop(stop)
    stripe, cut_from = _cut_tail(url, 3)
    second = ServiceProcess("identity", env).start()
    try:
        result = _verify(second.target, auditor)
    finally:
        second.stop()
    assert not result.intact
    assert list(result.broken_stripes) == [stripe]
    deleted = [p for p in result.problems if p.reason == "TAIL_DELETED"]
    assert deleted, list(result.problems)
    # The position of the last entry the first process saw committed, which is gone now.
    assert all(p.stripe == stripe and p.sequence >= cut_from for p in deleted)
    assert {p.reason for p in result.problems} <= {"TAIL_DELETED", "HEAD_ROLLED_BACK"}


def test_without_the_head_journal_a_killed_process_leaves_the_cut_unnoticed(
    identity_down: tuple[str, KeyFiles, str], tokens: Tokens
) -> None:
    """What the journal closes: with it switched off, a tail written after the newest
    checkpoint by a process that was killed can be cut without a trace."""
    url, keys, issuer = identity_down
    env = _env(url, issuer, keys, "0")
    gp, auditor = tokens.user("dr.jansen"), tokens.user("auditor.dekker")
    first = ServiceProcess("identity", env).start()
    try:
        _authorize(first.target, gp, 12)
    finally:
        first.stop(signal.SIGKILL)
    _cut_tail(url, 3)
    second = ServiceProcess("identity", env).start()
    try:
        assert _verify(second.target, auditor).intact
    finally:
        second.stop()

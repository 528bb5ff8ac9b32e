"""A database upgraded from before the chain was keyed: its entries are anchored by the
checkpoint identity publishes when it starts, and the chain goes on keyed from there."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from identity.access_log_checkpoints import CheckpointPublisher
from identity.access_log_verify import Verification
from identity.main import deps_for
from identity.models import AccessLogEntry, chain_hash
from identity.use_cases import access_log
from identity.use_cases.deps import Deps
from servicekit.db import make_engine
from servicekit.migrations import upgrade
from testkit.database import fresh_database

from ..log_keys import (
    PEPPER,
    KeyFiles,
    append,
    recompute_chain,
    record,
    stripe_rows,
    superuser,
    without_triggers,
)
from .test_migrations_and_log import AUDITOR

LEGACY = 5


def legacy_append(conn: psycopg.Connection[dict[str, object]], stripe: int, count: int) -> None:
    """Entries as identity wrote them before migration 0003: SHA-256 links, no key."""
    columns = AccessLogEntry.HASHED_FIELDS
    for n in range(count):
        head = conn.execute(
            "SELECT last_sequence, last_hash FROM access_log_head WHERE id = %s FOR UPDATE",
            (stripe,),
        ).fetchone()
        assert head is not None
        entry = record(n)
        entry_hash = chain_hash(str(head["last_hash"]), entry.canonical())
        sequence = int(str(head["last_sequence"])) + 1
        conn.execute(
            f"INSERT INTO access_log (stripe, sequence, {', '.join(columns)},"
            f" previous_hash, entry_hash) VALUES (%s, %s, {', '.join('%s' for _ in columns)},"
            " %s, %s)",
            (
                stripe,
                sequence,
                *(getattr(entry, c) for c in columns),
                head["last_hash"],
                entry_hash,
            ),
        )
        conn.execute(
            "UPDATE access_log_head SET last_sequence = %s, previous_hash = last_hash,"
            " last_hash = %s WHERE id = %s",
            (sequence, entry_hash, stripe),
        )
    conn.commit()


@pytest.fixture
def upgraded(tmp_path: Path) -> Iterator[tuple[str, Deps, KeyFiles]]:
    """A database with 5 entries on stripe 0 written before 0003, migrated to the head."""
    with fresh_database("identity_upgrade") as url:
        upgrade("identity.migrations", url, "0002")
        with superuser(url) as conn:
            legacy_append(conn, 0, LEGACY)
        upgrade("identity.migrations", url)
        engine = make_engine(url)
        keys = KeyFiles(tmp_path)
        keys.add_chain_key("chain-1")
        keys.add_signing_key("sign-1")
        deps = deps_for(engine, PEPPER, log_stripes=1, access_log=keys.trust("chain-1", "sign-1"))
        try:
            yield url, deps, keys
        finally:
            engine.dispose()


def verify(deps: Deps) -> Verification:
    return access_log.verify_access_log(deps, AUDITOR)


def started(deps: Deps) -> CheckpointPublisher:
    """The checkpoint publisher as ``identity serve`` runs it, after its first checkpoint."""
    publisher = CheckpointPublisher(deps.log_trust(), deps.uow, deps.clock)
    publisher.start()
    deadline = time.monotonic() + 10
    while publisher.published < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert publisher.published == 1
    return publisher


def test_entries_from_before_the_keyed_chain_are_unanchored_until_identity_starts(
    upgraded: tuple[str, Deps, KeyFiles],
) -> None:
    _url, deps, _keys = upgraded
    before = verify(deps)
    assert {(p.stripe, p.reason, p.sequence) for p in before.problems} == {
        (0, "UNANCHORED_LEGACY_ENTRY", 1)
    }
    publisher = started(deps)
    try:
        append(deps, 0, 3)
        after = verify(deps)
        assert after.intact, after.problems
        assert after.legacy_entries == LEGACY
        assert after.checked == LEGACY + 3
    finally:
        publisher.stop()
    # Stopping published the heads this process moved.
    assert publisher.published == 2


def test_a_rewritten_legacy_entry_is_detected_by_the_start_checkpoint(
    upgraded: tuple[str, Deps, KeyFiles],
) -> None:
    url, deps, _keys = upgraded
    started(deps).stop()
    append(deps, 0, 3)
    with superuser(url) as conn:
        without_triggers(conn)
        conn.execute("UPDATE access_log SET reason = 'X' WHERE stripe = 0 AND sequence = 2")
        recompute_chain(conn, 0, unkeyed=True)
        conn.commit()
        assert {row["key_id"] for row in stripe_rows(conn, 0)} == {""}
    result = verify(deps)
    assert [(p.stripe, p.reason, p.sequence) for p in result.problems] == [
        (0, "CHECKPOINT_MISMATCH", LEGACY)
    ]


def test_the_publisher_checkpoints_after_so_many_entries(
    upgraded: tuple[str, Deps, KeyFiles],
) -> None:
    _url, deps, keys = upgraded
    trust = deps.log_trust()
    trust.checkpoint_every_entries = 4
    trust.checkpoint_every_seconds = 3600
    publisher = started(deps)
    try:
        append(deps, 0, 4)
        deadline = time.monotonic() + 10
        while publisher.published < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert publisher.published == 2
    finally:
        publisher.stop()
    stored = sorted(keys.checkpoint_dir.glob("checkpoint-*.json"))
    assert len(stored) == 2
    assert all(path.stat().st_mode & 0o222 == 0 for path in stored)  # read-only
    latest = verify(deps).latest_checkpoint_time
    assert latest is not None and latest <= dt.datetime.now(dt.UTC)

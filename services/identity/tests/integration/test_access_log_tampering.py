"""The access log against an insider with every privilege on identity's PostgreSQL database
but neither the chain key nor the checkpoint signing key: every rewrite is detected."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from identity import access_log_verify
from identity.access_log import LogChain
from identity.access_log_checkpoints import CheckpointRefused, HeadJournal, publish_checkpoint
from identity.access_log_trust import (
    AccessLogTrust,
    Checkpoint,
    DirectoryCheckpointStore,
    StripeHead,
)
from identity.access_log_verify import Verification
from identity.main import deps_for
from identity.models import chain_hash
from identity.use_cases import access_log
from identity.use_cases.deps import Deps
from servicekit.db import make_engine
from servicekit.migrations import upgrade
from testkit.database import fresh_database

from ..log_keys import (
    PEPPER,
    KeyFiles,
    append,
    canonical,
    cut_stripe,
    recompute_chain,
    stripe_rows,
    superuser,
    without_triggers,
)
from .test_migrations_and_log import AUDITOR


@dataclass
class Log:
    url: str
    engine: Engine
    keys: KeyFiles
    deps: Deps

    def with_trust(self, trust: AccessLogTrust) -> Deps:
        """Another process (or the same one restarted) over the same database."""
        return deps_for(self.engine, PEPPER, log_stripes=2, access_log=trust)

    def checkpoint(self, deps: Deps | None = None) -> str:
        deps = deps or self.deps
        published = publish_checkpoint(deps.log_trust(), deps.uow, deps.clock)
        assert published is not None
        return published[0]

    def verify(self, deps: Deps | None = None) -> Verification:
        return access_log.verify_access_log(deps or self.deps, AUDITOR)

    def verify_restarted(self) -> Verification:
        """Verification by a process that never saw the heads (what the chain and the
        checkpoints show on their own; the writing process also reports HEAD_ROLLED_BACK)."""
        return self.verify(self.with_trust(self.keys.trust("chain-1", "sign-1")))


@contextlib.contextmanager
def checkpointed_log(tmp_path: Path, name: str, after: dict[int, int]) -> Iterator[Log]:
    """A fresh database (``name``) whose stripes 0 and 1 hold 10 and 6 entries, a
    checkpoint of them, and then ``after[stripe]`` more entries on each stripe."""
    with fresh_database(name) as url:
        upgrade("identity.migrations", url)
        engine = make_engine(url)
        keys = KeyFiles(tmp_path)
        keys.add_chain_key("chain-1")
        keys.add_signing_key("sign-1")
        deps = deps_for(engine, PEPPER, log_stripes=2, access_log=keys.trust("chain-1", "sign-1"))
        log = Log(url, engine, keys, deps)
        append(deps, 0, 10)
        append(deps, 1, 6)
        log.checkpoint()
        for stripe, count in after.items():
            append(deps, stripe, count)
        try:
            yield log
        finally:
            engine.dispose()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    """Stripes 0 and 1 with 10 and 6 entries, a checkpoint of them, and 4 more entries on
    stripe 0 after it."""
    with checkpointed_log(tmp_path, "identity_tamper", {0: 4}) as log:
        yield log


def reasons(result: Verification) -> set[tuple[int | None, str]]:
    return {(p.stripe, p.reason) for p in result.problems}


def test_an_untouched_log_verifies_against_its_chain_keys_and_checkpoints(log: Log) -> None:
    result = log.verify()
    assert result.intact, result.problems
    assert result.checked == 20
    assert result.checkpoints_verified == 1
    assert result.checkpoint_store and result.latest_checkpoint_time is not None
    assert result.legacy_entries == 0
    with superuser(log.url) as conn:
        keys = conn.execute("SELECT DISTINCT key_id FROM access_log").fetchall()
    assert keys == [{"key_id": "chain-1"}]


def test_a_changed_entry_whose_chain_was_recomputed_with_sha256_is_detected(log: Log) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        victim = stripe_rows(conn, 0)[6]
        conn.execute(
            "UPDATE access_log SET decision = 'deny', reason = 'NO_CONSENT' WHERE id = %s",
            (victim["id"],),
        )
        recompute_chain(conn, 0, from_sequence=int(str(victim["sequence"])))
        conn.commit()
        rows = stripe_rows(conn, 0)
    # The rewrite is complete: from the victim on, every link is the SHA-256 link the log
    # used before it was keyed, and the head row points at the new end.
    relinked = rows[6:]
    for before, row in zip(rows[5:], relinked, strict=False):
        assert row["previous_hash"] == before["entry_hash"]
        assert chain_hash(str(row["previous_hash"]), canonical(row)) == row["entry_hash"]
    result = log.verify_restarted()
    assert not result.intact
    assert reasons(result) == {(0, "ENTRY_ALTERED")}
    assert result.first_broken == victim["id"]
    assert result.problems[0].sequence == victim["sequence"] == 7


def test_a_stripe_recomputed_as_if_written_before_the_chain_was_keyed_is_detected(
    log: Log,
) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        conn.execute(
            "UPDATE access_log SET reason = 'NO_CONSENT' WHERE stripe = 0 AND sequence = 3"
        )
        recompute_chain(conn, 0, unkeyed=True)
        conn.commit()
    result = log.verify()
    assert not result.intact
    # The checkpoint signed the keyed head at sequence 10; the rewritten stripe is not it.
    problem = next(p for p in result.problems if p.stripe == 0)
    assert problem.reason == "CHECKPOINT_MISMATCH"
    assert problem.sequence == 10 and problem.checkpoint


def journaled(log: Log, stripe: int, count: int) -> None:
    """``count`` more entries on ``stripe``, each signed by a head journal record of its own
    (as the journal signs a stripe that moves more slowly than the journal interval)."""
    journal = HeadJournal(log.deps.log_trust(), log.deps.clock)
    for _ in range(count):
        append(log.deps, stripe, 1)
        assert journal.flush()


@pytest.mark.parametrize("unkeyed", [True, False], ids=["as-unkeyed", "keeping-key-ids"])
def test_a_stripe_re_chained_from_its_start_is_reported_at_the_altered_entry(
    log: Log, unkeyed: bool
) -> None:
    # Stripe 1: six entries under the checkpoint, then six more each in a journal record.
    journaled(log, 1, 6)
    with superuser(log.url) as conn:
        without_triggers(conn)
        victim = stripe_rows(conn, 1)[8]
        conn.execute(
            "UPDATE access_log SET decision = 'deny', reason = 'NO_CONSENT' WHERE id = %s",
            (victim["id"],),
        )
        # Every link from the first entry on recomputed, so the chain breaks (or a signed
        # position mismatches) long before the entry that was changed.
        recompute_chain(conn, 1, unkeyed=unkeyed)
        conn.commit()
    result = log.verify_restarted()
    assert reasons(result) == {(1, "ENTRY_ALTERED")}
    [problem] = result.problems
    assert (problem.sequence, problem.entry_id) == (9, victim["id"])
    assert problem.checkpoint.startswith("journal-") and "#" in problem.checkpoint
    assert result.first_broken == victim["id"]


def test_a_re_chained_stretch_is_narrowed_to_the_signed_positions_around_it(log: Log) -> None:
    # Stripe 0: a checkpoint at 10, entries 11 to 14 without one; two more entries, each in
    # a journal record (15, 16). Entry 3 changes and the whole stripe is re-chained.
    journaled(log, 0, 2)
    with superuser(log.url) as conn:
        without_triggers(conn)
        conn.execute("UPDATE access_log SET reason = 'X' WHERE stripe = 0 AND sequence = 3")
        recompute_chain(conn, 0, unkeyed=True)
        conn.commit()
    [problem] = log.verify_restarted().problems
    # The first signed stretch that no chain key brings to its signed hash is 1 to 10: the
    # data says no more than "within 1 to 10", so the mismatch is named at the checkpoint.
    assert (problem.stripe, problem.reason, problem.sequence) == (0, "CHECKPOINT_MISMATCH", 10)


def test_a_stripe_re_chained_without_any_change_is_still_reported(log: Log) -> None:
    journaled(log, 1, 2)
    with superuser(log.url) as conn:
        without_triggers(conn)
        recompute_chain(conn, 1, unkeyed=True)
        conn.commit()
    result = log.verify_restarted()
    assert not result.intact
    assert reasons(result) == {(1, "CHECKPOINT_MISMATCH")}
    assert result.problems[0].sequence == 6


def test_a_deleted_tail_is_detected_by_the_checkpoint(log: Log) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        # Stripe 1 ends at the checkpoint's position (6): remove its last two entries and
        # move the head row back, leaving an intact keyed chain of four.
        cut_stripe(conn, 1, keep=4)
        conn.commit()
    result = log.verify_restarted()
    assert not result.intact
    assert reasons(result) == {(1, "TAIL_DELETED")}
    assert result.problems[0].sequence == 6
    assert result.problems[0].checkpoint.startswith("checkpoint-")
    # Without the checkpoint store (and in a process that never saw the heads) the cut
    # could not be seen: the chain itself is intact.
    unchecked = AccessLogTrust(LogChain(log.deps.log_trust().chain.keyring))
    with log.deps.uow() as uow:
        assert access_log_verify.verify(uow.repo, unchecked).intact


def test_entries_after_the_last_checkpoint_removed_with_the_head_row_left_are_detected(
    log: Log,
) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        conn.execute("DELETE FROM access_log WHERE stripe = 0 AND sequence > 12")
        conn.commit()
    result = log.verify()
    assert reasons(result) == {(0, "TAIL_DELETED")}
    assert result.problems[0].sequence == 13


def test_a_cut_below_a_journal_record_is_reported_and_never_signed_after_a_restart(
    log: Log,
) -> None:
    # The entries after the checkpoint (stripe 0, 11 to 14) are in a journal record; the
    # insider cuts 13 and 14 and moves the head row back. A restarted process knows nothing.
    assert HeadJournal(log.deps.log_trust(), log.deps.clock).flush()
    with superuser(log.url) as conn:
        without_triggers(conn)
        cut_stripe(conn, 0, keep=12)
        conn.commit()
    restarted = log.with_trust(log.keys.trust("chain-1", "sign-1"))
    result = log.verify(restarted)
    assert reasons(result) == {(0, "TAIL_DELETED")}
    assert result.problems[0].sequence == 14
    assert result.problems[0].checkpoint.startswith("journal-")
    # Its checkpoint publisher refuses to sign the cut stripe, and says so in the store.
    with pytest.raises(CheckpointRefused) as refused:
        log.checkpoint(restarted)
    assert (refused.value.stripe, refused.value.reason) == (0, "HEAD_ROLLED_BACK")
    assert (0, "HEAD_ROLLED_BACK") in reasons(log.verify_restarted())


def test_journal_segments_a_checkpoint_superseded_go_once_older_than_kept(log: Log) -> None:
    journaled(log, 1, 2)
    store = log.keys.checkpoint_dir
    [segment] = store.glob("journal-*.jsonl")
    trust = log.deps.log_trust()
    publish_checkpoint(trust, log.deps.uow, log.deps.clock)
    assert segment.exists()  # superseded, but younger than a week
    append(log.deps, 1, 1)
    week_later = dt.datetime.now(dt.UTC) + dt.timedelta(days=7, minutes=1)
    publish_checkpoint(trust, log.deps.uow, lambda: week_later)
    assert not segment.exists()
    assert len(list(store.glob("checkpoint-*.json"))) == 3
    result = log.verify()
    assert not {p.reason for p in result.problems} - {"CHECKPOINTS_MISSING"}


def test_a_truncated_stripe_is_detected(log: Log) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        cut_stripe(conn, 1, keep=0)
        conn.commit()
    result = log.verify_restarted()
    assert reasons(result) == {(1, "STRIPE_TRUNCATED")}


def test_a_truncated_table_with_its_triggers_disabled_is_detected(log: Log) -> None:
    with superuser(log.url) as conn:
        conn.execute("ALTER TABLE access_log DISABLE TRIGGER USER")
        conn.execute("TRUNCATE access_log")
        conn.execute(
            "UPDATE access_log_head SET last_sequence = 0, last_hash = %s, previous_hash = %s",
            ("0" * 64, "0" * 64),
        )
        conn.execute("ALTER TABLE access_log ENABLE TRIGGER USER")
        conn.commit()
    result = log.verify_restarted()
    assert reasons(result) == {(0, "STRIPE_TRUNCATED"), (1, "STRIPE_TRUNCATED")}


def test_forged_unsigned_and_unreadable_checkpoints_are_detected(log: Log) -> None:
    store = log.keys.checkpoint_dir
    good = Checkpoint.parse(next(store.glob("checkpoint-*.json")).read_bytes())
    # Signed by a key the insider made up, under the real key id ...
    forged = Checkpoint(good.time, "sign-1", (StripeHead(0, 2, "f" * 64),))
    signature = Ed25519PrivateKey.generate().sign(forged.payload())
    (store / "checkpoint-forged.json").write_bytes(
        Checkpoint(forged.time, forged.key_id, forged.heads, signature).document()
    )
    # ... under a key id nobody configured, without a signature, and not a checkpoint at all.
    unknown = json.loads(good.document())
    unknown["key_id"] = "sign-9"
    (store / "checkpoint-unknown.json").write_text(json.dumps(unknown))
    unsigned = json.loads(good.document())
    unsigned["signature"] = ""
    (store / "checkpoint-unsigned.json").write_text(json.dumps(unsigned))
    (store / "checkpoint-garbage.json").write_text("{")
    result = log.verify()
    assert {(p.checkpoint, p.reason) for p in result.problems} == {
        ("checkpoint-forged.json", "CHECKPOINT_SIGNATURE_INVALID"),
        ("checkpoint-unknown.json", "CHECKPOINT_KEY_UNKNOWN"),
        ("checkpoint-unsigned.json", "CHECKPOINT_SIGNATURE_INVALID"),
        ("checkpoint-garbage.json", "CHECKPOINT_UNREADABLE"),
    }
    assert all(p.stripe is None for p in result.problems)
    assert result.checkpoints_verified == 1


def test_forged_and_torn_head_journal_records_are_detected(log: Log) -> None:
    journaled(log, 1, 1)
    [segment] = log.keys.checkpoint_dir.glob("journal-*.jsonl")
    good = Checkpoint.parse(segment.read_bytes().splitlines()[0])
    forged = Checkpoint(good.time, "sign-1", (StripeHead(1, 3, "f" * 64),), journal=segment.name)
    signature = Ed25519PrivateKey.generate().sign(forged.payload())
    with segment.open("ab") as out:
        out.write(
            Checkpoint(forged.time, "sign-1", forged.heads, signature, journal=segment.name).line()
        )
        out.write(b'{"format": "carenet.identity.access-log.checkp')
    result = log.verify()
    assert {(p.checkpoint, p.reason) for p in result.problems} == {
        (f"{segment.name}#2", "CHECKPOINT_SIGNATURE_INVALID"),
        (f"{segment.name}#3", "CHECKPOINT_UNREADABLE"),
    }
    # Records are positions, not checkpoints.
    assert result.checkpoints_verified == 1


def test_a_head_that_does_not_match_its_entry_is_not_signed(log: Log) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        conn.execute("UPDATE access_log SET reason = 'X' WHERE stripe = 0 AND sequence = 14")
        conn.commit()
    with pytest.raises(CheckpointRefused) as refused:
        log.checkpoint()
    assert (refused.value.stripe, refused.value.reason) == (0, "ENTRY_ALTERED")
    assert len(list(DirectoryCheckpointStore(log.keys.checkpoint_dir).stored())) == 1


def test_both_keys_rotate_and_old_entries_and_checkpoints_still_verify(log: Log) -> None:
    keys = log.keys
    keys.add_chain_key("chain-2")
    keys.add_signing_key("sign-2")
    # The old private signing key is retired; its public key stays in the public directory.
    (keys.root / "signing" / "sign-1.pem").unlink()
    rotated = log.with_trust(keys.trust("chain-2", "sign-2"))
    append(rotated, 0, 5)
    append(rotated, 1, 3)
    log.checkpoint(rotated)
    result = log.verify(rotated)
    assert result.intact, result.problems
    assert result.checked == 28
    assert result.checkpoints_verified == 2
    with superuser(log.url) as conn:
        used = conn.execute(
            "SELECT key_id, count(*) AS n FROM access_log GROUP BY key_id ORDER BY key_id"
        ).fetchall()
    assert used == [{"key_id": "chain-1", "n": 20}, {"key_id": "chain-2", "n": 8}]
    # The old checkpoint verifies with the old public key only ...
    (keys.public_dir / "sign-1.pem").unlink()
    without_old_public_key = log.with_trust(keys.trust("chain-2", "sign-2"))
    assert {p.reason for p in log.verify(without_old_public_key).problems} == {
        "CHECKPOINT_KEY_UNKNOWN"
    }
    # ... and the old entries with the old chain key only.
    (keys.hmac_dir / "chain-1").unlink()
    without_old_chain_key = log.with_trust(keys.trust("chain-2", "sign-2"))
    assert "UNKNOWN_KEY" in {p.reason for p in log.verify(without_old_chain_key).problems}


def test_appends_of_two_processes_to_the_same_stripes_keep_the_chains_intact(log: Log) -> None:
    from concurrent.futures import ThreadPoolExecutor

    other = log.with_trust(log.keys.trust("chain-1", "sign-1"))

    def work(n: int) -> None:
        # Both processes append to both stripes, on both paths.
        append(log.deps if n % 2 else other, n % 4 // 2, 5)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(work, range(12)))
    result = log.verify()
    assert result.intact, result.problems
    assert result.checked == 20 + 60

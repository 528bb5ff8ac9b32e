"""The access log against an insider who rolls a stripe back, re-chains entries under the
key derived from the (not secret enough) pepper, or deletes the checkpoint files."""

from __future__ import annotations

import datetime as dt

import pytest

from identity.access_log import DERIVED_KEY_ID, AccessLogTampered, derive_chain_key, keyed_link
from identity.access_log_checkpoints import CheckpointRefused
from identity.access_log_trust import AccessLogTrust, Checkpoint, DirectoryCheckpointStore
from identity.access_log_verify import Verification

from ..log_keys import (
    PEPPER,
    append,
    canonical,
    cut_stripe,
    record,
    stripe_rows,
    superuser,
    without_triggers,
)
from .test_access_log_tampering import Log, log, reasons  # noqa: F401 (the fixture)


def restarted_trust(subject: Log) -> AccessLogTrust:
    return subject.keys.trust("chain-1", "sign-1")


def verify_restarted(subject: Log, trust: AccessLogTrust | None = None) -> Verification:
    return subject.verify(subject.with_trust(trust or restarted_trust(subject)))


def stored(subject: Log) -> list[Checkpoint]:
    store = DirectoryCheckpointStore(subject.keys.checkpoint_dir)
    return [Checkpoint.parse(s.data) for s in store.stored()]


def test_a_stripe_rolled_back_after_the_last_checkpoint_is_never_built_on_nor_signed(
    log: Log,  # noqa: F811
) -> None:
    # Stripe 1: six entries under the checkpoint, four more after it (the last one
    # committed by Authorize's one-statement path, so this process knows the head at 10).
    append(log.deps, 1, 4)
    with superuser(log.url) as conn:
        without_triggers(conn)
        cut_stripe(conn, 1, keep=8)
        conn.commit()
    # What the chain and the checkpoint show on their own: the cut is in the window after
    # the last checkpoint, so a process that never saw the head finds nothing.
    assert verify_restarted(log).intact
    # The process that wrote the entries refuses to build on the rolled-back head ...
    for factory in (log.deps.single_statement_uow, log.deps.uow):
        with factory() as uow, pytest.raises(AccessLogTampered) as refused:
            uow.repo.append_log(record(99), 1)
    assert refused.value.default_reason == "ACCESS_LOG_TAMPERED"
    with superuser(log.url) as conn:
        assert len(stripe_rows(conn, 1)) == 8
    # ... and to sign it; the signed refusal goes to the store.
    with pytest.raises(CheckpointRefused) as not_signed:
        log.checkpoint()
    assert (not_signed.value.stripe, not_signed.value.reason) == (1, "HEAD_ROLLED_BACK")
    checkpoints = stored(log)
    assert len(checkpoints) == 2
    assert checkpoints[-1].heads == () and checkpoints[-1].refused == ((1, "HEAD_ROLLED_BACK", 10),)
    # Every process now reports it, this one and any other.
    for result in (log.verify(), verify_restarted(log)):
        assert reasons(result) == {(1, "HEAD_ROLLED_BACK")}
        assert result.problems[0].sequence == 10
        assert result.problems[0].checkpoint.startswith("checkpoint-")
    # Refused again at the next wake: the refusal is not published twice.
    with pytest.raises(CheckpointRefused):
        log.checkpoint()
    assert len(stored(log)) == 2


def test_no_process_signs_a_head_that_does_not_extend_the_previous_checkpoint(
    log: Log,  # noqa: F811
) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        # Below the checkpoint's position 6 on stripe 1, with an intact keyed chain left.
        cut_stripe(conn, 1, keep=4)
        conn.commit()
    other = log.with_trust(restarted_trust(log))
    with pytest.raises(CheckpointRefused) as refused:
        log.checkpoint(other)
    assert (refused.value.stripe, refused.value.reason, refused.value.known) == (
        1,
        "HEAD_ROLLED_BACK",
        6,
    )
    assert [c.heads == () for c in stored(log)] == [False, True]
    assert reasons(verify_restarted(log)) == {(1, "TAIL_DELETED"), (1, "HEAD_ROLLED_BACK")}


def rechain_under_the_pepper(conn: object, stripe: int, from_sequence: int) -> None:
    """Relinks the stripe from ``from_sequence`` on under the key derived from the pepper
    (which an insider may know) as key ``bsn-pepper``, and moves the head row."""
    import psycopg

    assert isinstance(conn, psycopg.Connection)
    key = derive_chain_key(PEPPER)
    rows = stripe_rows(conn, stripe)
    previous = str(rows[from_sequence - 2]["entry_hash"])
    before = previous
    for row in rows[from_sequence - 1 :]:
        sequence = int(str(row["sequence"]))
        link = keyed_link(key, DERIVED_KEY_ID, stripe, sequence, previous, canonical(row))
        conn.execute(
            "UPDATE access_log SET previous_hash = %s, entry_hash = %s, key_id = %s WHERE id = %s",
            (previous, link, DERIVED_KEY_ID, row["id"]),
        )
        before, previous = previous, link
    conn.execute(
        "UPDATE access_log_head SET last_sequence = %s, last_hash = %s, previous_hash = %s"
        " WHERE id = %s",
        (len(rows), previous, before, stripe),
    )


def test_entries_rechained_under_the_pepper_key_after_dedicated_ones_are_refused(
    log: Log,  # noqa: F811
) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        # Stripe 0: the checkpoint signed 10, entries 11-14 follow. Change 12 and re-chain.
        victim = stripe_rows(conn, 0)[11]
        conn.execute("UPDATE access_log SET reason = 'NO_CONSENT' WHERE id = %s", (victim["id"],))
        rechain_under_the_pepper(conn, 0, from_sequence=12)
        conn.commit()
    result = verify_restarted(log)
    assert reasons(result) == {(0, "PEPPER_KEYED_ENTRY")}
    assert (result.problems[0].sequence, result.first_broken) == (12, victim["id"])


def test_the_pepper_key_is_never_a_dedicated_chain_key(log: Log) -> None:  # noqa: F811
    log.keys.add_chain_key(DERIVED_KEY_ID)
    with pytest.raises(ValueError, match="reserved"):
        log.keys.trust("chain-1", "sign-1")
    (log.keys.hmac_dir / DERIVED_KEY_ID).unlink()
    with pytest.raises(ValueError, match="dedicated"):
        log.keys.trust(DERIVED_KEY_ID, "sign-1")


def test_deleted_checkpoints_are_reported_as_missing(log: Log) -> None:  # noqa: F811
    for path in log.keys.checkpoint_dir.glob("checkpoint-*.json"):
        path.unlink()
    trust = restarted_trust(log)
    # Just started: its first checkpoint may not be published yet.
    assert verify_restarted(log, trust).intact
    assert trust.started is not None
    trust.started -= dt.timedelta(seconds=trust.checkpoint_every_seconds + 1)
    result = verify_restarted(log, trust)
    assert reasons(result) == {(None, "CHECKPOINTS_MISSING")}


def test_entries_left_uncovered_past_the_interval_are_reported(log: Log) -> None:  # noqa: F811
    trust = restarted_trust(log)
    assert verify_restarted(log, trust).intact
    # An hour on, no checkpoint since: stripe 0's last four entries are covered by none.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    trust.clock = lambda: later
    assert reasons(verify_restarted(log, trust)) == {(0, "CHECKPOINTS_MISSING")}

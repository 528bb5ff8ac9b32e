"""VerifyAccessLog over a range: from a signed checkpoint's heads, and a walk bounded by an
entry limit that goes on where it stopped. A range starts from a trusted state only, so a
chain recomputed from before the checkpoint, a deleted tail and a truncated stripe are found
inside it; what lies before it is not read, and the answer says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from identity.access_log_checkpoints import HeadJournal
from identity.access_log_trust import Checkpoint, StripeHead
from identity.access_log_verify import Coverage, Scope, Verification
from identity.use_cases import access_log
from servicekit.errors import InvalidArgument

from ..log_keys import (
    cut_stripe,
    recompute_chain,
    superuser,
    without_triggers,
)
from .test_access_log_tampering import Log, checkpointed_log, reasons
from .test_migrations_and_log import AUDITOR


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    """Stripes 0 and 1 with 10 and 6 entries, checkpoint ``first`` of them, then 4 and 3 more
    entries (stripe 0: 11 to 14, stripe 1: 7 to 9)."""
    with checkpointed_log(tmp_path, "identity_ranges", {0: 4, 1: 3}) as log:
        yield log


def first(log: Log) -> str:
    [name] = [p.name for p in log.keys.checkpoint_dir.glob("checkpoint-*.json")]
    return name


def since(log: Log, checkpoint: str, max_entries: int = 0) -> Verification:
    """A range check by a process that never saw the heads (a restarted one)."""
    restarted = log.with_trust(log.keys.trust("chain-1", "sign-1"))
    return access_log.verify_access_log(restarted, AUDITOR, Scope(checkpoint, max_entries))


def walked(result: Verification) -> dict[int, Coverage]:
    return {c.stripe: c for c in result.coverage if c.to_sequence or c.from_sequence}


def test_a_range_checks_only_what_was_appended_since_the_checkpoint_and_says_so(
    log: Log,
) -> None:
    name = first(log)
    result = since(log, name)
    assert result.intact, result.problems
    assert result.checked == 7  # 11 to 14 and 7 to 9, not the 16 the checkpoint signed
    assert result.since == name
    assert result.resume is None
    assert walked(result) == {
        0: Coverage(0, 10, 14, to_end=True),
        1: Coverage(1, 6, 9, to_end=True),
    }
    # The stripes the checkpoint names as empty are walked from their start (to their end).
    assert all(c.to_end for c in result.coverage)
    assert len(result.coverage) == 64
    full = log.verify_restarted()
    assert full.intact and full.checked == 23 and full.since == ""
    assert walked(full)[0] == Coverage(0, 0, 14, to_end=True)
    assert full.latest_checkpoint == name


def test_an_entry_altered_inside_the_range_with_its_chain_recomputed_is_found(log: Log) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        conn.execute("UPDATE access_log SET reason = 'X' WHERE stripe = 0 AND sequence = 12")
        recompute_chain(conn, 0, from_sequence=12)
        conn.commit()
    result = since(log, first(log))
    assert reasons(result) == {(0, "ENTRY_ALTERED")}
    assert result.problems[0].sequence == 12
    assert not walked(result)[0].to_end


@pytest.mark.parametrize("unkeyed", [True, False], ids=["as-unkeyed", "keeping-key-ids"])
def test_a_chain_recomputed_from_before_the_checkpoint_is_found_at_its_start(
    log: Log, unkeyed: bool
) -> None:
    # Entry 3 (before the checkpoint) changes and everything from it on is re-chained, so
    # the chain inside the range links up with itself: only the signed head shows it.
    with superuser(log.url) as conn:
        without_triggers(conn)
        conn.execute("UPDATE access_log SET reason = 'X' WHERE stripe = 0 AND sequence = 3")
        recompute_chain(conn, 0, from_sequence=3, unkeyed=unkeyed)
        conn.commit()
    name = first(log)
    result = since(log, name)
    assert reasons(result) == {(0, "CHECKPOINT_MISMATCH")}
    [problem] = result.problems
    assert (problem.sequence, problem.checkpoint) == (10, name)


def test_tampering_before_the_range_is_not_read_by_it_but_by_the_full_walk(log: Log) -> None:
    # Entry 3's content changes and nothing else: the signed entries are untouched.
    with superuser(log.url) as conn:
        without_triggers(conn)
        conn.execute("UPDATE access_log SET reason = 'X' WHERE stripe = 0 AND sequence = 3")
        conn.commit()
    ranged = since(log, first(log))
    assert ranged.intact
    assert walked(ranged)[0].from_sequence == 10  # the answer says where it started
    full = log.verify_restarted()
    assert reasons(full) == {(0, "ENTRY_ALTERED")}
    assert full.problems[0].sequence == 3


def test_a_deleted_tail_inside_the_range_is_found(log: Log) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        conn.execute("DELETE FROM access_log WHERE stripe = 0 AND sequence > 12")
        conn.commit()
    result = since(log, first(log))
    assert reasons(result) == {(0, "TAIL_DELETED")}
    assert result.problems[0].sequence == 13


def test_a_tail_a_later_checkpoint_signed_is_found_with_its_head_row_moved_back(
    log: Log,
) -> None:
    name = first(log)
    later = log.checkpoint()
    with superuser(log.url) as conn:
        without_triggers(conn)
        cut_stripe(conn, 1, keep=7)
        conn.commit()
    result = since(log, name)
    assert reasons(result) == {(1, "TAIL_DELETED")}
    assert (result.problems[0].sequence, result.problems[0].checkpoint) == (9, later)


def test_a_cut_below_the_start_checkpoint_is_found_at_its_position(log: Log) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        cut_stripe(conn, 1, keep=4)
        conn.commit()
    name = first(log)
    result = since(log, name)
    assert reasons(result) == {(1, "TAIL_DELETED")}
    assert (result.problems[0].sequence, result.problems[0].checkpoint) == (6, name)


def test_a_truncated_stripe_is_found_by_a_range(log: Log) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        cut_stripe(conn, 1, keep=0)
        conn.commit()
    result = since(log, first(log))
    assert reasons(result) == {(1, "STRIPE_TRUNCATED")}


def test_a_range_from_a_forged_unknown_or_journal_checkpoint_is_refused(log: Log) -> None:
    store, real = log.keys.checkpoint_dir, first(log)
    good = Checkpoint.parse((store / real).read_bytes())
    # The insider re-chains stripe 0 from entry 3 and publishes a checkpoint of the new
    # heads under the real key id, signed with a key of their own.
    with superuser(log.url) as conn:
        without_triggers(conn)
        conn.execute("UPDATE access_log SET reason = 'X' WHERE stripe = 0 AND sequence = 3")
        recompute_chain(conn, 0, from_sequence=3)
        conn.commit()
        [row] = conn.execute(
            "SELECT entry_hash FROM access_log WHERE stripe = 0 AND sequence = 14"
        ).fetchall()
    forged = Checkpoint(good.time, "sign-1", (StripeHead(0, 14, str(row["entry_hash"])),))
    signature = Ed25519PrivateKey.generate().sign(forged.payload())
    (store / "checkpoint-forged.json").write_bytes(
        Checkpoint(forged.time, "sign-1", forged.heads, signature).document()
    )
    unknown_key = json.loads(good.document())
    unknown_key["key_id"] = "sign-9"
    (store / "checkpoint-unknown-key.json").write_text(json.dumps(unknown_key))
    assert HeadJournal(log.deps.log_trust(), log.deps.clock).flush()
    [segment] = store.glob("journal-*.jsonl")
    for name in (
        "checkpoint-forged.json",
        "checkpoint-unknown-key.json",
        "checkpoint-nobody-published.json",
        f"{segment.name}#1",
    ):
        with pytest.raises(InvalidArgument) as refused:
            since(log, name)
        assert refused.value.reason == "CHECKPOINT_NOT_VERIFIED", name
        assert [v.field for v in refused.value.violations] == ["since_checkpoint"]
    # From the real checkpoint the rewrite is found.
    assert (0, "CHECKPOINT_MISMATCH") in reasons(since(log, real))


def pages(log: Log, checkpoint: str, size: int) -> list[Verification]:
    restarted = log.with_trust(log.keys.trust("chain-1", "sign-1"))
    answers = [access_log.verify_access_log(restarted, AUDITOR, Scope(checkpoint, size))]
    while answers[-1].resume is not None:
        scope = Scope(checkpoint, size, answers[-1].resume)
        answers.append(access_log.verify_access_log(restarted, AUDITOR, scope))
        assert len(answers) < 100
    return answers


@pytest.mark.parametrize("size", [1, 3, 4, 14])
def test_a_walk_bounded_by_an_entry_limit_goes_on_where_it_stopped(log: Log, size: int) -> None:
    answers = pages(log, "", size)
    assert all(a.checked <= size for a in answers)
    assert sum(a.checked for a in answers) == 23
    assert all(a.intact for a in answers), [a.problems for a in answers]
    # Each stripe's pieces join up, from its first entry to its end, and only the last
    # piece reached the end.
    for stripe, end in ((0, 14), (1, 9)):
        pieces = [c for a in answers for c in a.coverage if c.stripe == stripe]
        assert pieces[0].from_sequence == 0
        assert [p.from_sequence for p in pieces[1:]] == [p.to_sequence for p in pieces[:-1]]
        assert pieces[-1].to_sequence == end and pieces[-1].to_end
        assert not any(p.to_end for p in pieces[:-1])
    ranged = pages(log, first(log), 2)
    assert sum(a.checked for a in ranged) == 7 and len(ranged) == 4


def test_a_bounded_walk_finds_what_changed_in_a_later_page_and_at_its_seam(log: Log) -> None:
    with superuser(log.url) as conn:
        without_triggers(conn)
        conn.execute("UPDATE access_log SET reason = 'X' WHERE stripe = 1 AND sequence = 8")
        conn.commit()
    answers = pages(log, "", 5)
    problems = [p for a in answers for p in a.problems]
    assert [(p.stripe, p.reason, p.sequence) for p in problems] == [(1, "ENTRY_ALTERED", 8)]
    # An entry rewritten (with its chain) at the position a page stopped at, between two
    # calls, is found by the next call.
    restarted = log.with_trust(log.keys.trust("chain-1", "sign-1"))
    page = access_log.verify_access_log(restarted, AUDITOR, Scope("", 5))
    assert page.resume is not None and (page.resume.stripe, page.resume.sequence) == (0, 5)
    with superuser(log.url) as conn:
        without_triggers(conn)
        conn.execute("UPDATE access_log SET reason = 'Y' WHERE stripe = 0 AND sequence = 5")
        recompute_chain(conn, 0, from_sequence=5)
        conn.commit()
    following = access_log.verify_access_log(restarted, AUDITOR, Scope("", 5, page.resume))
    assert [(p.stripe, p.reason, p.sequence) for p in following.problems] == [
        (0, "ENTRY_ALTERED", 5)
    ]

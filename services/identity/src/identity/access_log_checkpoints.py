"""Publishing signed checkpoints of the access log's stripe heads (see identity.access_log).

A checkpoint is published when identity starts (which also anchors entries written before
the chain was keyed), every ``checkpoint_every_seconds`` when the heads moved, as soon as
this process has appended ``checkpoint_every_entries`` more entries, and on demand
(``identity checkpoint-access-log``). Before signing, each head row is checked against the
entry it points at and that entry's keyed link: a head the process cannot vouch for is not
signed (the refusal is logged with the stripe and the reason, never an entry's content).

A head is also refused (``HEAD_ROLLED_BACK``) when it does not extend what is known of its
stripe: the previous checkpoint's position must still hold the hash it signed, and the head
may not be below (or at the same sequence as, with another hash) the highest head this
process saw committed. That refusal is itself signed and published (a checkpoint with no
heads and a ``refused`` list), so that ``VerifyAccessLog`` reports it from then on: a rolled
back stripe is never built on, and never signed into looking intact.

Between checkpoints, the **head journal** (:class:`HeadJournal`) publishes, every
``journal_every_seconds`` (1 s by default), a signed record of the heads this process saw
committed that moved since its previous record, appended to a journal segment of its own in
the same store. A head a record signed is a position the stripe must reach, for every
process from then on: verification reads the records like checkpoints (the segments started
since the newest checkpoint, less an interval and twice :data:`CHECKPOINT_SLACK`), and the
publisher refuses to sign a head below one. So a tail cut after the newest checkpoint is
found after a restart too, unless it was committed less than one journal interval before
the process that wrote it died without stopping.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable

from identity.access_log import HEAD_ROLLED_BACK, LEGACY_KEY_ID
from identity.access_log_trust import (
    AccessLogTrust,
    Checkpoint,
    CheckpointUnreadable,
    StripeHead,
    journal_segment_name,
)
from identity.models import GENESIS_HASH, MAX_LOG_STRIPES, AccessLogEntry, AccessLogHead, chain_hash
from identity.unit_of_work import UnitOfWork

log = logging.getLogger("identity.access_log")


class CheckpointRefused(RuntimeError):
    """A stripe head that does not match its entry; nothing was signed."""

    def __init__(self, stripe: int, reason: str, known: int = 0) -> None:
        super().__init__(f"stripe {stripe}: {reason}")
        self.stripe = stripe
        self.reason = reason
        self.known = known


def _head_problem(trust: AccessLogTrust, head: AccessLogHead, entry: AccessLogEntry | None) -> str:
    if head.last_sequence == 0:
        return "" if head.last_hash == GENESIS_HASH else "HEAD_MISMATCH"
    if entry is None:
        return "HEAD_ENTRY_MISSING"
    if entry.entry_hash != head.last_hash or entry.previous_hash != head.previous_hash:
        return "HEAD_MISMATCH"
    if entry.key_id == LEGACY_KEY_ID:
        computed: str | None = chain_hash(entry.previous_hash, entry.canonical())
    else:
        computed = trust.chain.keyring.link(
            entry.key_id, entry.stripe, entry.sequence, entry.previous_hash, entry.canonical()
        )
    if computed is None:
        return "UNKNOWN_KEY"
    return "" if computed == entry.entry_hash else "ENTRY_ALTERED"


# How late a checkpoint may be beyond its interval before its absence is a problem, and the
# clock difference and publishing delay allowed between replicas reading each other's journal.
CHECKPOINT_SLACK = dt.timedelta(seconds=60)


def latest_checkpoint(trust: AccessLogTrust) -> Checkpoint | None:
    """The newest stored checkpoint with heads that parses and is signed by a known key."""
    if trust.store is None:
        return None
    for stored in reversed(list(trust.store.stored())):
        try:
            checkpoint = Checkpoint.parse(stored.data)
        except CheckpointUnreadable:
            continue
        if (
            checkpoint.heads
            and not checkpoint.journal
            and trust.public_keys.problem(checkpoint) is None
        ):
            return checkpoint
    return None


def journal_since(trust: AccessLogTrust, latest: dt.datetime | None) -> dt.datetime | None:
    """The oldest journal segment start still to be read, given the newest checkpoint's
    time (None: every segment). A checkpoint's publisher refused to sign any head below a
    journal record it read, so older records were checked by it (or its predecessors);
    a segment spans at most one checkpoint interval (:class:`HeadJournal`)."""
    if latest is None:
        return None
    return latest - dt.timedelta(seconds=trust.checkpoint_every_seconds) - 2 * CHECKPOINT_SLACK


def journal_heads(trust: AccessLogTrust, since: dt.datetime | None) -> dict[int, StripeHead]:
    """Per stripe, the highest head a readable, validly signed journal record names."""
    highest: dict[int, StripeHead] = {}
    if trust.store is None:
        return highest
    for stored in trust.store.journal(since):
        try:
            record = Checkpoint.parse(stored.data)
        except CheckpointUnreadable:
            continue
        if trust.public_keys.problem(record) is not None:
            continue
        for head in record.heads:
            known = highest.get(head.stripe)
            if known is None or head.sequence > known.sequence:
                highest[head.stripe] = head
    return highest


def current_heads(trust: AccessLogTrust, uow_factory: Callable[[], UnitOfWork]) -> list[StripeHead]:
    """Every stripe's head, each checked against the entry it points at."""
    previous = latest_checkpoint(trust)
    signed = {h.stripe: h for h in previous.heads} if previous else {}
    since = journal_since(trust, previous.time if previous else None)
    for stripe, journaled in journal_heads(trust, since).items():
        before = signed.get(stripe)
        if before is None or journaled.sequence > before.sequence:
            signed[stripe] = journaled
    seen = {stripe: trust.chain.known(stripe) for stripe in range(MAX_LOG_STRIPES)}
    with uow_factory() as uow:
        result = []
        for head, entry in uow.repo.log_heads_with_entries():
            problem = _head_problem(trust, head, entry)
            if problem:
                raise CheckpointRefused(head.id, problem)
            before = signed.get(head.id)
            if (
                before is not None
                and before.sequence > 0
                and (
                    before.sequence > head.last_sequence
                    or uow.repo.log_entry_hash(head.id, before.sequence) != before.head
                )
            ):
                raise CheckpointRefused(head.id, HEAD_ROLLED_BACK, before.sequence)
            result.append(StripeHead(head.id, head.last_sequence, head.last_hash))
    for stripe_head in result:
        stripe = stripe_head.stripe
        if trust.chain.check(stripe, stripe_head.sequence, stripe_head.head, seen.get(stripe)):
            known = trust.chain.tampered().get(stripe_head.stripe, 0)
            raise CheckpointRefused(stripe_head.stripe, HEAD_ROLLED_BACK, known)
    return result


def _prune_journal(trust: AccessLogTrust, checkpoint_time: dt.datetime) -> None:
    """Removes the journal segments this checkpoint superseded (its publisher refused any
    head below their records, and readers skip them) once they are older than
    ``journal_keep_seconds``: they only narrow down where an old re-chained stretch was
    altered (identity.access_log_verify)."""
    if trust.store is None or trust.journal_keep_seconds <= 0:
        return
    superseded = journal_since(trust, checkpoint_time)
    assert superseded is not None
    before = min(superseded, checkpoint_time - dt.timedelta(seconds=trust.journal_keep_seconds))
    try:
        removed = trust.store.prune_journal(before)
    except OSError:
        log.exception("access_log_journal_prune_failed")
        return
    if removed:
        log.info("access_log_journal_pruned", extra={"segments": removed})


def _publish_refusal(
    trust: AccessLogTrust, refused: CheckpointRefused, clock: Callable[[], dt.datetime]
) -> None:
    """Signs and publishes the refusal of a rolled-back stripe (once per stripe and known
    sequence in this process), so that verification reports it."""
    assert trust.signer is not None and trust.store is not None
    key = (refused.stripe, refused.known)
    if key in trust.refusals_published:
        return
    alarm = trust.signer.sign((), clock(), [(refused.stripe, refused.reason, refused.known)])
    name = trust.store.publish(alarm)
    trust.refusals_published.add(key)
    log.error(
        "access_log_checkpoint_refusal_published",
        extra={"checkpoint": name, "stripe": refused.stripe, "reason": refused.reason},
    )


def publish_checkpoint(
    trust: AccessLogTrust,
    uow_factory: Callable[[], UnitOfWork],
    clock: Callable[[], dt.datetime],
    unless_heads: list[StripeHead] | None = None,
) -> tuple[str, list[StripeHead]] | None:
    """Signs and publishes the current heads; returns the checkpoint's name and the heads,
    or None when they equal ``unless_heads`` (nothing moved since the last checkpoint)."""
    if trust.signer is None or trust.store is None:
        raise RuntimeError("no checkpoint signing key or store is configured")
    try:
        heads = current_heads(trust, uow_factory)
    except CheckpointRefused as refused:
        log.error(
            "access_log_checkpoint_refused",
            extra={"stripe": refused.stripe, "reason": refused.reason},
        )
        if refused.reason == HEAD_ROLLED_BACK:
            _publish_refusal(trust, refused, clock)
        raise
    if unless_heads is not None and heads == unless_heads:
        return None
    checkpoint = trust.signer.sign(heads, clock())
    name = trust.store.publish(checkpoint)
    _prune_journal(trust, checkpoint.time)
    log.info(
        "access_log_checkpoint_published",
        extra={
            "checkpoint": name,
            "key_id": checkpoint.key_id,
            "entries": sum(h.sequence for h in heads),
        },
    )
    return name, heads


class CheckpointPublisher:
    """A background thread that publishes checkpoints: at start, then every
    ``checkpoint_every_seconds`` if the heads moved, and early once this process appended
    ``checkpoint_every_entries`` entries since the last one."""

    def __init__(
        self,
        trust: AccessLogTrust,
        uow_factory: Callable[[], UnitOfWork],
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._trust = trust
        self._uow_factory = uow_factory
        self._clock = clock
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="access-log-checkpoints", daemon=True
        )
        self._last: list[StripeHead] | None = None
        self.published = 0
        every = max(1, trust.checkpoint_every_entries)
        trust.chain.on_append(lambda count: self._wake.set() if count % every == 0 else None)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the thread after one last checkpoint of what this process wrote."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    def publish_now(self) -> None:
        published = publish_checkpoint(self._trust, self._uow_factory, self._clock, self._last)
        if published is not None:
            self._last = published[1]
            self.published += 1

    def _run(self) -> None:
        while True:
            try:
                self.publish_now()
            except CheckpointRefused:
                pass  # logged with its stripe and reason; the auditor's VerifyAccessLog says more
            except Exception:  # logged (type and stack only); tried again at the next wake
                log.exception("access_log_checkpoint_failed")
            if self._stopping:
                return
            self._wake.wait(self._trust.checkpoint_every_seconds)
            self._wake.clear()


class HeadJournal:
    """Publishes, every ``journal_every_seconds``, one signed record of the heads this
    process saw committed that moved since its previous record (nothing when none moved),
    appended to a segment of its own in the checkpoint store; a new segment every checkpoint
    interval, so that readers can skip the segments the newest checkpoint covers."""

    def __init__(self, trust: AccessLogTrust, clock: Callable[[], dt.datetime]) -> None:
        if trust.signer is None or trust.store is None:
            raise RuntimeError("no checkpoint signing key or store is configured")
        self._trust = trust
        self._clock = clock
        self._written: dict[int, tuple[int, str]] = {}
        self._segment = ""
        self._segment_start: dt.datetime | None = None
        self._flushing = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="access-log-journal", daemon=True)
        self.records = 0

    def flush(self) -> bool:
        """Publishes the heads that moved; returns whether a record was written."""
        trust = self._trust
        assert trust.signer is not None and trust.store is not None
        with self._flushing:
            heads = trust.chain.committed_heads()
            moved = [
                StripeHead(stripe, sequence, head)
                for stripe, (sequence, head) in sorted(heads.items())
                if self._written.get(stripe) != (sequence, head)
            ]
            if not moved:
                return False
            now = self._clock()
            interval = dt.timedelta(seconds=trust.checkpoint_every_seconds)
            if self._segment_start is None or now - self._segment_start >= interval:
                self._segment_start = now
                self._segment = journal_segment_name(now, secrets.token_hex(4))
            record = trust.signer.sign(moved, now, journal=self._segment)
            trust.store.append_journal(self._segment, record.line())
            for head in moved:
                self._written[head.stripe] = (head.sequence, head.head)
            self.records += 1
            return True

    def start(self) -> None:
        if self._trust.journal_every_seconds > 0:
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the thread after a last record of what this process saw committed (none
        when the journal is off)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._trust.journal_every_seconds > 0:
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception:  # logged (type and stack only); tried again at the next interval
            log.exception("access_log_journal_failed")

    def _run(self) -> None:
        while not self._stopping.wait(self._trust.journal_every_seconds):
            self._flush_logged()

"""Publishing signed checkpoints of the access log's stripe heads (see identity.access_log).

A checkpoint is published when identity starts (which also anchors entries written before
the chain was keyed), every ``checkpoint_every_seconds`` when the heads moved, as soon as
this process has appended ``checkpoint_every_entries`` more entries, and on demand
(``identity checkpoint-access-log``). Before signing, each head row is checked against the
entry it points at and that entry's keyed link: a head the process cannot vouch for is not
signed (the refusal is logged with the stripe and the reason, never an entry's content).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from identity.access_log import LEGACY_KEY_ID, AccessLogTrust, StripeHead
from identity.models import GENESIS_HASH, AccessLogEntry, AccessLogHead, chain_hash
from identity.unit_of_work import UnitOfWork

log = logging.getLogger("identity.access_log")


class CheckpointRefused(RuntimeError):
    """A stripe head that does not match its entry; nothing was signed."""

    def __init__(self, stripe: int, reason: str) -> None:
        super().__init__(f"stripe {stripe}: {reason}")
        self.stripe = stripe
        self.reason = reason


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


def current_heads(trust: AccessLogTrust, uow_factory: Callable[[], UnitOfWork]) -> list[StripeHead]:
    """Every stripe's head, each checked against the entry it points at."""
    with uow_factory() as uow:
        result = []
        for head, entry in uow.repo.log_heads_with_entries():
            problem = _head_problem(trust, head, entry)
            if problem:
                raise CheckpointRefused(head.id, problem)
            result.append(StripeHead(head.id, head.last_sequence, head.last_hash))
    return result


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
        raise
    if unless_heads is not None and heads == unless_heads:
        return None
    checkpoint = trust.signer.sign(heads, clock())
    name = trust.store.publish(checkpoint)
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

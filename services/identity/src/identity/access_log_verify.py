"""Verifying the access log: every stripe's keyed chain, and every published checkpoint.

A problem names a stripe, a sequence, an entry id and a checkpoint, and a reason; never an
entry's content (no patient identifiers).

Reasons, per stripe:

* ``SEQUENCE_GAP``: an entry is missing or out of place in the stripe (removed, inserted or
  renumbered).
* ``LINK_BROKEN``: an entry's previous_hash is not its predecessor's hash.
* ``ENTRY_ALTERED``: an entry's hash is not its keyed link, e.g. a changed entry whose chain
  was recomputed with SHA-256 or any key but the chain key.
* ``UNKNOWN_KEY``: an entry names a chain key the keyring does not hold.
* ``UNKEYED_ENTRY``: an entry without a key after keyed entries of its stripe.
* ``UNANCHORED_LEGACY_ENTRY``: an entry without a key that no signed checkpoint covers
  (entries written before the chain was keyed are anchored by the checkpoint identity
  publishes at its first start).
* ``CHECKPOINT_MISMATCH``: the entry at a checkpoint's position is not the one it signed.
  When the stripe was re-chained (without the key) from before the altered entry, the
  entries are recomputed under the chain keys from the last signed position that still
  holds: the problem then names the first signed stretch whose content no longer gives the
  signed hash, and is ``ENTRY_ALTERED`` at the entry itself when that stretch is one entry
  (head journal records sign nearly every position of a stripe that moves slowly).
* ``TAIL_DELETED``: the stripe ends before a position its head row or a checkpoint names.
* ``STRIPE_TRUNCATED``: the same, with no entry left in the stripe.
* ``HEAD_MISMATCH``: the stripe's head row does not point at its last entry.
* ``HEAD_MISSING``: a checkpoint names a stripe whose head row is gone.
* ``HEAD_ROLLED_BACK``: the stripe's head went back or forked from a head identity saw
  committed (a signed refusal in the store, or this process's own memory); ``sequence`` is
  the highest position identity knew. Entries cut after the last checkpoint show here.
* ``PEPPER_KEYED_ENTRY``: with dedicated chain keys configured, an entry under the key
  derived from the pepper after entries under a dedicated key, or that no signed
  checkpoint covers (the pepper is not secret enough to protect a chain).
* ``CHECKPOINTS_MISSING`` (no stripe unless one is named): a checkpoint store is configured
  but entries are not covered by any checkpoint although the newest one is older than the
  checkpoint interval plus :data:`CHECKPOINT_SLACK`, or the store holds no checkpoint at all
  while the log has entries and identity has been up longer than one interval (checkpoints
  deleted, or the publisher failing).

Per checkpoint or head journal record (no stripe; a record is named
``<segment>#<line>``): ``CHECKPOINT_UNREADABLE``, ``CHECKPOINT_KEY_UNKNOWN``,
``CHECKPOINT_SIGNATURE_INVALID``.

Head journal records (identity.access_log_checkpoints.HeadJournal) are signed positions
like a checkpoint's heads, but count neither as verified checkpoints nor for the newest
checkpoint's time.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from identity.access_log import DERIVED_KEY_ID, HEAD_ROLLED_BACK, LEGACY_KEY_ID, HmacKeyring
from identity.access_log_checkpoints import CHECKPOINT_SLACK, journal_since
from identity.access_log_trust import AccessLogTrust, Checkpoint, CheckpointUnreadable
from identity.models import (
    GENESIS_HASH,
    MAX_LOG_STRIPES,
    AccessLogEntry,
    AccessLogHead,
    chain_hash,
)
from identity.repository import IdentityRepository

VERIFY_CHUNK = 5000


@dataclass(frozen=True)
class Problem:
    reason: str
    stripe: int | None = None
    sequence: int = 0
    entry_id: int = 0
    checkpoint: str = ""


@dataclass(frozen=True)
class Verification:
    intact: bool
    checked: int
    # The id of the first entry (in id order) found altered, out of its chain or not the one
    # a checkpoint signed; 0 when intact or when only entries at a stripe's end are gone.
    first_broken: int
    broken_stripes: tuple[int, ...] = ()
    problems: tuple[Problem, ...] = ()
    legacy_entries: int = 0
    checkpoints_verified: int = 0
    latest_checkpoint_time: dt.datetime | None = None
    checkpoint_store: bool = False


@dataclass
class _Positions:
    """The positions signed checkpoints vouch for, per stripe: sequence -> (head, checkpoint)."""

    by_stripe: dict[int, dict[int, list[tuple[str, str]]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    verified: int = 0
    latest: dt.datetime | None = None
    refused: list[Problem] = field(default_factory=list)

    def add(self, name: str, checkpoint: Checkpoint) -> None:
        for stripe, reason, sequence in checkpoint.refused:
            self.refused.append(Problem(reason, stripe, sequence, checkpoint=name))
        if not checkpoint.heads:
            return  # a signed refusal, not a checkpoint of heads
        if not checkpoint.journal:
            self.verified += 1
            if self.latest is None or checkpoint.time > self.latest:
                self.latest = checkpoint.time
        for head in checkpoint.heads:
            if head.sequence <= 0:
                continue
            seen = self.by_stripe[head.stripe].setdefault(head.sequence, [])
            if all(known != head.head for known, _ in seen):
                seen.append((head.head, name))


def _read_checkpoints(trust: AccessLogTrust, problems: list[Problem]) -> _Positions:
    positions = _Positions()
    if trust.store is None:
        return positions
    store = trust.store
    for stored in store.stored():
        _read_one(trust, stored.name, stored.data, positions, problems)
    for stored in store.journal(journal_since(trust, positions.latest)):
        _read_one(trust, stored.name, stored.data, positions, problems)
    return positions


def _read_one(
    trust: AccessLogTrust, name: str, data: bytes, positions: _Positions, problems: list[Problem]
) -> None:
    try:
        checkpoint = Checkpoint.parse(data)
    except CheckpointUnreadable:
        problems.append(Problem("CHECKPOINT_UNREADABLE", checkpoint=name))
        return
    reason = trust.public_keys.problem(checkpoint)
    if reason is not None:
        problems.append(Problem(reason, checkpoint=name))
        return
    positions.add(name, checkpoint)


@dataclass
class _StripeWalk:
    stripe: int
    keyring: HmacKeyring
    signed: dict[int, list[tuple[str, str]]]
    checked: int = 0
    legacy: int = 0
    last: int = 0
    keyed: bool = False
    dedicated: bool = False

    @property
    def covered(self) -> int:
        """The highest position a checkpoint signed."""
        if self._covered < 0:
            self._covered = max(self.signed, default=0)
        return self._covered

    _covered: int = -1

    def walk(self, repo: IdentityRepository, head: AccessLogHead | None) -> list[Problem]:
        """Walks the stripe from its first entry; stops at the first broken link."""
        previous, expected, after = GENESIS_HASH, 1, 0
        while chunk := repo.access_log_chunk(self.stripe, after, VERIFY_CHUNK):
            for entry in chunk:
                self.checked += 1
                if entry.sequence != expected:
                    return self._fault("SEQUENCE_GAP", entry)
                if entry.previous_hash != previous:
                    return self._relinked(repo, self._fault("LINK_BROKEN", entry))
                computed = self._link(entry, previous)
                if computed.startswith("!"):
                    return self._relinked(repo, self._fault(computed[1:], entry))
                if computed != entry.entry_hash:
                    return self._relinked(repo, self._fault("ENTRY_ALTERED", entry))
                for signed_head, name in self.signed.get(entry.sequence, ()):
                    if signed_head != entry.entry_hash:
                        fault = self._fault("CHECKPOINT_MISMATCH", entry, name)
                        return self._relinked(repo, fault)
                previous, expected = entry.entry_hash, expected + 1
            after = chunk[-1].sequence
        self.last = expected - 1
        return self._end(head, expected - 1, previous)

    def _link(self, entry: AccessLogEntry, previous: str) -> str:
        """The entry's link under its key, or ``!REASON`` when its key is not acceptable."""
        canonical, covered = entry.canonical(), self.covered
        if entry.key_id == LEGACY_KEY_ID:
            if self.keyed:
                return "!UNKEYED_ENTRY"
            if entry.sequence > covered:
                return "!UNANCHORED_LEGACY_ENTRY"
            self.legacy += 1
            return chain_hash(previous, canonical)
        if entry.key_id == DERIVED_KEY_ID and self.keyring.dedicated:
            # Never written once dedicated keys are configured: accepted only as a stripe's
            # first entries from before, under a signed checkpoint.
            if self.dedicated or entry.sequence > covered:
                return "!PEPPER_KEYED_ENTRY"
        else:
            self.dedicated = True
        self.keyed = True
        computed = self.keyring.link(entry.key_id, self.stripe, entry.sequence, previous, canonical)
        return "!UNKNOWN_KEY" if computed is None else computed

    def _relinked(self, repo: IdentityRepository, fault: list[Problem]) -> list[Problem]:
        """Where the chain breaks (``fault``) is where an insider began to re-chain it, which
        may be before the entry they altered: the altered entry itself when the signed
        positions single it out, a tighter signed stretch instead of a checkpoint mismatch,
        else the fault as found."""
        localized = self._localize(repo)
        if localized and (
            localized[0].reason == "ENTRY_ALTERED" or fault[0].reason == "CHECKPOINT_MISMATCH"
        ):
            return localized
        return fault

    def _localize(self, repo: IdentityRepository) -> list[Problem]:
        """Where a re-chained stripe was altered: from the stripe's start, each stretch up
        to the next signed position is recomputed from the signed hash before it with the
        entries' content under each chain key (and unkeyed); the first stretch that no key
        brings to its signed hash holds the alteration. Empty when the data cannot say (a
        position signed twice differently, a gap, or every stretch intact)."""
        signed = sorted(self.signed.items())
        if any(len(heads) != 1 for _, heads in signed):
            return []
        position, previous = 0, GENESIS_HASH
        for sequence, [(signed_head, name)] in signed:
            entries = list(repo.access_log_chunk(self.stripe, position, sequence - position))
            if [e.sequence for e in entries] != list(range(position + 1, sequence + 1)):
                return []
            if not self._reproduces(entries, previous, signed_head):
                last = entries[-1]
                reason = "ENTRY_ALTERED" if len(entries) == 1 else "CHECKPOINT_MISMATCH"
                return self._fault(reason, last, name)
            position, previous = sequence, signed_head
        return []

    def _reproduces(self, entries: list[AccessLogEntry], previous: str, signed: str) -> bool:
        """Whether the entries' content, chained from ``previous`` under their own key ids,
        under any one chain key, or unkeyed, ends at the ``signed`` hash."""
        canonicals = [e.canonical() for e in entries]
        candidates: list[str | None] = [None, LEGACY_KEY_ID, *self.keyring.keys]
        for candidate in candidates:
            link = previous
            for entry, canonical in zip(entries, canonicals, strict=True):
                key_id = entry.key_id if candidate is None else candidate
                computed = (
                    chain_hash(link, canonical)
                    if key_id == LEGACY_KEY_ID
                    else self.keyring.link(key_id, self.stripe, entry.sequence, link, canonical)
                )
                if computed is None:
                    break
                link = computed
            else:
                if link == signed:
                    return True
        return False

    def _fault(self, reason: str, entry: AccessLogEntry, checkpoint: str = "") -> list[Problem]:
        return [Problem(reason, self.stripe, entry.sequence, entry.id, checkpoint)]

    def _end(self, head: AccessLogHead | None, last: int, last_hash: str) -> list[Problem]:
        cut = "STRIPE_TRUNCATED" if last == 0 else "TAIL_DELETED"
        problems = []
        if head is None:
            if last or self.signed:
                problems.append(Problem("HEAD_MISSING", self.stripe, last))
        elif head.last_sequence > last:
            problems.append(Problem(cut, self.stripe, last + 1))
        elif head.last_sequence != last or head.last_hash != last_hash:
            problems.append(Problem("HEAD_MISMATCH", self.stripe, head.last_sequence))
        beyond = [(sequence, signed) for sequence, signed in self.signed.items() if sequence > last]
        if beyond:
            sequence, signed = max(beyond)
            problems.append(Problem(cut, self.stripe, sequence, checkpoint=signed[0][1]))
        return problems


def verify(repo: IdentityRepository, trust: AccessLogTrust) -> Verification:
    """Checks every stripe's keyed chain against its head row and every checkpoint."""
    problems: list[Problem] = []
    # Checkpoints first, then one snapshot of the table: every checkpoint read was signed
    # from heads committed before the snapshot, so the snapshot holds its positions.
    positions = _read_checkpoints(trust, problems)
    repo.snapshot()
    heads = {head.id: head for head in repo.log_heads()}
    problems.extend(positions.refused)
    checked = legacy = 0
    uncovered: list[int] = []
    stripes = set(heads) | set(positions.by_stripe) | set(range(MAX_LOG_STRIPES))
    for stripe in sorted(stripes):
        signed = positions.by_stripe.get(stripe, {})
        walk = _StripeWalk(stripe, trust.chain.keyring, signed)
        problems.extend(walk.walk(repo, heads.get(stripe)))
        checked += walk.checked
        legacy += walk.legacy
        if walk.last > max(signed, default=0):
            uncovered.append(stripe)
    problems.extend(_rolled_back(trust, positions))
    problems.extend(_checkpoints_missing(trust, positions, uncovered, checked))
    entry_ids = [p.entry_id for p in problems if p.entry_id]
    return Verification(
        intact=not problems,
        checked=checked,
        first_broken=min(entry_ids, default=0),
        broken_stripes=tuple(sorted({p.stripe for p in problems if p.stripe is not None})),
        problems=tuple(problems),
        legacy_entries=legacy,
        checkpoints_verified=positions.verified,
        latest_checkpoint_time=positions.latest,
        checkpoint_store=trust.checkpoints,
    )


def _rolled_back(trust: AccessLogTrust, positions: _Positions) -> list[Problem]:
    """Stripes this process found rolled back (unless a signed refusal names them). The
    heads verification read are not compared here: its snapshot may be older than what this
    process committed since."""
    reported = {(p.stripe, p.sequence) for p in positions.refused}
    return [
        Problem(HEAD_ROLLED_BACK, stripe, known)
        for stripe, known in sorted(trust.chain.tampered().items())
        if (stripe, known) not in reported
    ]


def _checkpoints_missing(
    trust: AccessLogTrust, positions: _Positions, uncovered: list[int], entries: int
) -> list[Problem]:
    """Checkpoints that should be in the store but are not (see CHECKPOINTS_MISSING)."""
    if trust.store is None or not entries:
        return []
    now = trust.clock()
    interval = dt.timedelta(seconds=trust.checkpoint_every_seconds)
    if positions.latest is None:
        started = trust.started or now
        return [Problem("CHECKPOINTS_MISSING")] if now - started > interval else []
    if now - positions.latest <= interval + CHECKPOINT_SLACK:
        return []
    return [Problem("CHECKPOINTS_MISSING", stripe) for stripe in uncovered]

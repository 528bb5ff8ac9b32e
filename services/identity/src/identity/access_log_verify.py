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

What one verification covers (:class:`Scope`): every stripe from its first entry (the full
walk), or from a signed checkpoint's heads (``since``: the name of a checkpoint in the
store whose signature verifies; an unknown, unsigned, forged or journal name is refused with
:class:`CheckpointNotVerified`). A range starts from the signed head alone: the entry at
each stripe's signed position must still be there with the signed hash (else
``CHECKPOINT_MISMATCH``, ``SEQUENCE_GAP``, ``TAIL_DELETED`` or ``STRIPE_TRUNCATED`` at that
position), and the walk goes on from it, so a chain recomputed from before the checkpoint, a
deleted tail and a truncated stripe are found as in the full walk; entries before the
checkpoint's positions are not read, and tampering with them that leaves the signed entries
in place is found only by the full walk. ``max_entries`` bounds the entries one call reads;
a walk cut short says where (:class:`Resume`, carried by the caller in an authenticated
page token) and the next call starts there, again from the entry at that position and its
hash. :attr:`Verification.coverage` says per stripe from which position to which the chain
was checked and whether to its end.
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


class CheckpointNotVerified(ValueError):
    """A range asked to start at a checkpoint the store does not hold with a valid signature
    (or at a head journal record, which is not a checkpoint of every stripe)."""


@dataclass(frozen=True)
class Resume:
    """Where a walk cut short goes on: after ``sequence`` of ``stripe``, whose entry has hash
    ``head`` (``sequence`` below 1: the stripe's range start, not begun yet), with what the walk
    knew of the stripe's keys so far."""

    stripe: int
    sequence: int
    head: str = ""
    keyed: bool = False
    dedicated: bool = False


@dataclass(frozen=True)
class Scope:
    """What one verification covers: from a signed checkpoint (``since``, its name in the
    store) or every stripe's first entry (``since`` empty); at most ``max_entries`` entries
    (0: unbounded); continuing a walk cut short (``resume``)."""

    since: str = ""
    max_entries: int = 0
    resume: Resume | None = None


@dataclass(frozen=True)
class Coverage:
    """The part of one stripe's chain a verification checked: the entries after
    ``from_sequence`` (a trusted position: 0, a signed checkpoint's head, or where the
    previous page stopped) up to ``to_sequence``; ``to_end`` when it reached the stripe's end
    and compared it with the head row and every checkpoint."""

    stripe: int
    from_sequence: int
    to_sequence: int
    to_end: bool


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
    coverage: tuple[Coverage, ...] = ()
    since: str = ""
    # Where the next call goes on; None when every stripe was walked to its end.
    resume: Resume | None = None
    latest_checkpoint: str = ""


@dataclass
class _Positions:
    """The positions signed checkpoints vouch for, per stripe: sequence -> (head, checkpoint)."""

    by_stripe: dict[int, dict[int, list[tuple[str, str]]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    verified: int = 0
    latest: dt.datetime | None = None
    latest_name: str = ""
    refused: list[Problem] = field(default_factory=list)
    # The verified checkpoints of heads (not journal records), by name.
    checkpoints: dict[str, Checkpoint] = field(default_factory=dict)

    def add(self, name: str, checkpoint: Checkpoint) -> None:
        for stripe, reason, sequence in checkpoint.refused:
            self.refused.append(Problem(reason, stripe, sequence, checkpoint=name))
        if not checkpoint.heads:
            return  # a signed refusal, not a checkpoint of heads
        if not checkpoint.journal:
            self.verified += 1
            self.checkpoints[name] = checkpoint
            if self.latest is None or checkpoint.time > self.latest:
                self.latest, self.latest_name = checkpoint.time, name
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
    # The trusted position the walk starts after, and its hash.
    origin: int = 0
    origin_hash: str = GENESIS_HASH
    last_hash: str = GENESIS_HASH
    cut_short: bool = False
    at_end: bool = False

    @property
    def covered(self) -> int:
        """The highest position a checkpoint signed."""
        if self._covered < 0:
            self._covered = max(self.signed, default=0)
        return self._covered

    _covered: int = -1

    def start(self, repo: IdentityRepository, sequence: int, head: str, name: str) -> list[Problem]:
        """Begins the walk after ``sequence``, a trusted position (a signed checkpoint's head,
        or where a previous page stopped): the entry there must still hold ``head``."""
        self.origin = self.last = sequence
        self.origin_hash = self.last_hash = head
        if sequence == 0:
            return []
        found = repo.access_log_chunk(self.stripe, sequence - 1, 1)
        entry = found[0] if found else None
        if entry is None:
            cut = "TAIL_DELETED" if repo.access_log_chunk(self.stripe, 0, 1) else "STRIPE_TRUNCATED"
            return [Problem(cut, self.stripe, sequence, checkpoint=name)]
        if entry.sequence != sequence:
            return self._fault("SEQUENCE_GAP", entry, name)
        if entry.entry_hash != head:
            # Not the entry the checkpoint signed, or no longer the one the previous page
            # verified there.
            return self._fault("CHECKPOINT_MISMATCH" if name else "ENTRY_ALTERED", entry, name)
        if not self.keyed:
            self.keyed = entry.key_id != LEGACY_KEY_ID
            self.dedicated = entry.key_id not in (LEGACY_KEY_ID, DERIVED_KEY_ID)
        return []

    def walk(
        self, repo: IdentityRepository, head: AccessLogHead | None, budget: int | None = None
    ) -> list[Problem]:
        """Walks the stripe from its start (:meth:`start`); stops at the first broken link,
        or once ``budget`` entries are checked (``cut_short``)."""
        previous, expected, after = self.origin_hash, self.origin + 1, self.origin
        while budget is None or self.checked < budget:
            limit = VERIFY_CHUNK if budget is None else min(VERIFY_CHUNK, budget - self.checked)
            chunk = repo.access_log_chunk(self.stripe, after, limit)
            if not chunk:
                break
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
                self.last, self.last_hash = entry.sequence, previous
            after = chunk[-1].sequence
        else:
            self.cut_short = True
            return []
        self.at_end = True
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
        """Where a re-chained stripe was altered: from the walk's start, each stretch up
        to the next signed position is recomputed from the signed hash before it with the
        entries' content under each chain key (and unkeyed); the first stretch that no key
        brings to its signed hash holds the alteration. Empty when the data cannot say (a
        position signed twice differently, a gap, or every stretch intact)."""
        signed = sorted(item for item in self.signed.items() if item[0] > self.origin)
        if any(len(heads) != 1 for _, heads in signed):
            return []
        position, previous = self.origin, self.origin_hash
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


def verify(
    repo: IdentityRepository, trust: AccessLogTrust, scope: Scope | None = None
) -> Verification:
    """Checks the stripes' keyed chains, as far as ``scope`` says (default: all of every
    stripe), against their head rows and every checkpoint."""
    scope = scope or Scope()
    problems: list[Problem] = []
    # Checkpoints first, then one snapshot of the table: every checkpoint read was signed
    # from heads committed before the snapshot, so the snapshot holds its positions.
    positions = _read_checkpoints(trust, problems)
    starts = _range_starts(positions, scope.since)
    repo.snapshot()
    heads = {head.id: head for head in repo.log_heads()}
    problems.extend(positions.refused)
    checked = legacy = 0
    uncovered: list[int] = []
    coverage: list[Coverage] = []
    resume = scope.resume
    stripes = set(heads) | set(positions.by_stripe) | set(range(MAX_LOG_STRIPES))
    for stripe in sorted(s for s in stripes if resume is None or s >= resume.stripe):
        budget = scope.max_entries - checked if scope.max_entries else None
        if budget == 0:
            return _result(
                problems, positions, trust, scope, checked, legacy, coverage, Resume(stripe, -1)
            )
        signed = positions.by_stripe.get(stripe, {})
        walk = _StripeWalk(stripe, trust.chain.keyring, signed)
        sequence, head, name = starts.get(stripe, (0, GENESIS_HASH, scope.since))
        if resume is not None and resume.stripe == stripe and resume.sequence >= 1:
            sequence, head, name = resume.sequence, resume.head, ""
            walk.keyed, walk.dedicated = resume.keyed, resume.dedicated
        resume = None
        found = walk.start(repo, sequence, head, name) or walk.walk(repo, heads.get(stripe), budget)
        problems.extend(found)
        checked += walk.checked
        legacy += walk.legacy
        coverage.append(Coverage(stripe, walk.origin, walk.last, walk.at_end))
        if walk.at_end and walk.last > max(signed, default=0):
            uncovered.append(stripe)
        if walk.cut_short:
            after = Resume(stripe, walk.last, walk.last_hash, walk.keyed, walk.dedicated)
            return _result(problems, positions, trust, scope, checked, legacy, coverage, after)
    problems.extend(_rolled_back(trust, positions))
    problems.extend(_checkpoints_missing(trust, positions, uncovered, checked))
    return _result(problems, positions, trust, scope, checked, legacy, coverage, None)


def _range_starts(positions: _Positions, since: str) -> dict[int, tuple[int, str, str]]:
    """Each stripe's trusted start: (sequence, hash, checkpoint) of checkpoint ``since``'s
    signed head (none: the stripe was empty then, and starts at its first entry)."""
    if not since:
        return {}
    checkpoint = positions.checkpoints.get(since)
    if checkpoint is None:
        raise CheckpointNotVerified(since)
    return {
        h.stripe: (h.sequence, h.head, since) if h.sequence > 0 else (0, GENESIS_HASH, since)
        for h in checkpoint.heads
    }


def _result(
    problems: list[Problem],
    positions: _Positions,
    trust: AccessLogTrust,
    scope: Scope,
    checked: int,
    legacy: int,
    coverage: list[Coverage],
    resume: Resume | None,
) -> Verification:
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
        coverage=tuple(coverage),
        since=scope.since,
        resume=resume,
        latest_checkpoint=positions.latest_name,
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

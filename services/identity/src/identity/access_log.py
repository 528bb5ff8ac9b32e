"""What makes the access log tamper-evident to someone who can write to its database.

Two things live outside the database:

* **The chain key.** Each entry's ``entry_hash`` is HMAC-SHA256, under a key the database
  never sees, over the entry's stripe, sequence, key id, the previous entry's hash and its
  canonical content (:func:`keyed_link`). Someone with every privilege on the database but
  not the key cannot recompute a chain after changing, inserting, removing or reordering an
  entry. Keys rotate: every row names its key id, new entries use the keyring's current key
  and verification knows the older ones.
* **Signed checkpoints.** Periodically identity signs the head (sequence and hash) of every
  stripe with an Ed25519 key and publishes the checkpoint to a store outside the log table
  (:class:`CheckpointStore`: a directory here). A chain cut back at its end still verifies
  under the key, but it no longer reaches the position a checkpoint signed.

Entries written before the chain was keyed (``key_id`` '') carry the unkeyed SHA-256 link
(:func:`identity.models.chain_hash`). They are accepted only as a stripe's first entries and
only where a signed checkpoint covers them: identity publishes one when it starts, so an
upgraded database is anchored at its first start.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import itertools
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from servicekit import errors, metrics

log = logging.getLogger("identity.access_log")

KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
# The id of the chain key derived from the BSN pepper, used when no keys are configured.
DERIVED_KEY_ID = "bsn-pepper"
LEGACY_KEY_ID = ""
MIN_KEY_BYTES = 32
CHECKPOINT_FORMAT = "carenet.identity.access-log.checkpoint/v1"


HEAD_ROLLED_BACK = "HEAD_ROLLED_BACK"


class AccessLogTampered(errors.Unavailable):
    """A stripe's head went back or forked from what this process saw committed: nothing
    is appended to it (fail closed) and no checkpoint signs it."""

    default_reason = "ACCESS_LOG_TAMPERED"


class AccessLogKeyError(ValueError):
    """A key file or key id that cannot be used; the message names the file, never a key."""


def _check_key_id(key_id: str) -> str:
    if not KEY_ID.fullmatch(key_id):
        raise AccessLogKeyError(f"key id {key_id!r} must match {KEY_ID.pattern}")
    return key_id


def _key_files(directory: Path) -> Iterator[Path]:
    """Regular files of a directory, skipping what Kubernetes adds to a Secret volume
    (``..data`` and its timestamped siblings) and other hidden files."""
    if not directory.is_dir():
        raise AccessLogKeyError(f"{directory} is not a directory")
    for path in sorted(directory.iterdir()):
        if not path.name.startswith(".") and path.is_file():
            yield path


# ---------------------------------------------------------------- the keyed chain


def keyed_link(
    key: bytes, key_id: str, stripe: int, sequence: int, previous_hash: str, canonical: str
) -> str:
    """HMAC-SHA256 (hex) binding an entry's position, key id, predecessor and content."""
    message = f"{stripe}:{sequence}:{key_id}:{previous_hash}:{canonical}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def derive_chain_key(pepper: bytes) -> bytes:
    """The chain key derived from the BSN pepper (a secret already outside the database)."""
    return hmac.new(pepper, b"carenet identity access-log chain key v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class HmacKeyring:
    """The chain keys by id; new entries use ``current_id``."""

    current_id: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            _check_key_id(key_id)
            if len(key) < MIN_KEY_BYTES:
                raise AccessLogKeyError(
                    f"chain key {key_id!r} is shorter than {MIN_KEY_BYTES} bytes"
                )
        if self.current_id not in self.keys:
            raise AccessLogKeyError(
                f"the current chain key {self.current_id!r} is not in the keyring"
            )

    @classmethod
    def derived(cls, pepper: bytes) -> HmacKeyring:
        return cls(DERIVED_KEY_ID, {DERIVED_KEY_ID: derive_chain_key(pepper)})

    @classmethod
    def from_directory(cls, directory: Path, current_id: str, pepper: bytes) -> HmacKeyring:
        """One file per key, named by its key id, holding at least 32 random bytes in base64
        (``openssl rand -base64 32``). The key derived from the pepper stays known, so that
        entries chained before dedicated keys were configured still verify."""
        if current_id == DERIVED_KEY_ID:
            raise AccessLogKeyError(f"{DERIVED_KEY_ID!r} cannot be a dedicated chain key id")
        keys = {DERIVED_KEY_ID: derive_chain_key(pepper)}
        for path in _key_files(directory):
            key_id = _check_key_id(path.name)
            if key_id == DERIVED_KEY_ID:
                raise AccessLogKeyError(f"{path}: {DERIVED_KEY_ID!r} is reserved")
            try:
                keys[key_id] = base64.b64decode(path.read_text().strip(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise AccessLogKeyError(f"{path} does not hold a base64 key") from exc
        return cls(current_id or DERIVED_KEY_ID, keys)

    @property
    def dedicated(self) -> bool:
        """Whether new entries use a dedicated key: then the key derived from the pepper
        (which is not secret enough to protect a chain) is never written, and verification
        accepts it only for a stripe's first entries, under a signed checkpoint."""
        return self.current_id != DERIVED_KEY_ID

    def link(
        self, key_id: str, stripe: int, sequence: int, previous_hash: str, canonical: str
    ) -> str | None:
        """The entry's keyed link under ``key_id``, or None when the key is unknown."""
        key = self.keys.get(key_id)
        if key is None:
            return None
        return keyed_link(key, key_id, stripe, sequence, previous_hash, canonical)


class LogChain:
    """The process's view of the chains it appends to: the keyring and, per stripe, the head
    (sequence and hash) it last saw. An append computes the next link from that head and
    writes it in one statement that holds only if the head is still there; if another
    writer moved it, the head is read again and the link recomputed."""

    # How long an autocommit append waits for another thread's append to the same stripe
    # before it goes ahead anyway (and retries if that one moved the head meanwhile).
    STRIPE_WAIT_SECONDS = 2.0

    def __init__(self, keyring: HmacKeyring) -> None:
        self.keyring = keyring
        self._heads: dict[int, tuple[int, str]] = {}
        # Per stripe, the highest committed head (sequence, hash) this process has seen or
        # written, and the stripes found rolled back or forked (with the sequence known).
        self._known: dict[int, tuple[int, str]] = {}
        self._tampered: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stripe_locks: dict[int, threading.Lock] = {}
        self._appended = itertools.count(1)
        self._listeners: list[Callable[[int], None]] = []

    @contextlib.contextmanager
    def turn(self, stripe: int) -> Iterator[None]:
        """One autocommit append to ``stripe`` at a time in this process, so that threads
        sharing a stripe take turns instead of invalidating each other's link (the head
        row's lock would serialise them in the database anyway). It gives up waiting after
        :attr:`STRIPE_WAIT_SECONDS`, so it can never deadlock with a database lock."""
        with self._lock:
            lock = self._stripe_locks.setdefault(stripe, threading.Lock())
        acquired = lock.acquire(timeout=self.STRIPE_WAIT_SECONDS)
        try:
            yield
        finally:
            if acquired:
                lock.release()

    def head(self, stripe: int) -> tuple[int, str] | None:
        return self._heads.get(stripe)

    def moved(
        self, stripe: int, sequence: int, entry_hash: str, seen: tuple[int, str] | None
    ) -> None:
        """Records the stripe's head as read (committed) from the database; raises
        :class:`AccessLogTampered` when it went back or forked from ``seen``."""
        if self.check(stripe, sequence, entry_hash, seen):
            raise AccessLogTampered("the access log's stripe head went back; see the alert")
        with self._lock:
            self._heads[stripe] = (sequence, entry_hash)

    def known(self, stripe: int) -> tuple[int, str] | None:
        """The highest committed head this process has seen or written on the stripe. Take
        it *before* reading a head to :meth:`check`: what was committed before the read
        began must be in it (what commits during the read may not be)."""
        with self._lock:
            return self._known.get(stripe)

    def check(
        self, stripe: int, sequence: int, entry_hash: str, seen: tuple[int, str] | None
    ) -> str:
        """Compares a committed head with ``seen`` (:meth:`known`, taken before the read):
        returns HEAD_ROLLED_BACK (and remembers the stripe as such, and logs an alert naming
        the stripe only) when it is lower, or at the same sequence with another hash;
        otherwise records it and returns ''. A stripe found rolled back stays so."""
        with self._lock:
            if stripe in self._tampered:
                return HEAD_ROLLED_BACK
            if seen is None or sequence > seen[0] or seen == (sequence, entry_hash):
                self._raise(stripe, sequence, entry_hash)
                return ""
            self._tampered[stripe] = seen[0]
            self._heads.pop(stripe, None)
        log.critical(
            "access_log_head_rolled_back",
            extra={"stripe": stripe, "known_sequence": seen[0], "found": sequence},
        )
        return HEAD_ROLLED_BACK

    def _raise(self, stripe: int, sequence: int, entry_hash: str) -> None:
        known = self._known.get(stripe)
        if known is None or sequence > known[0]:
            self._known[stripe] = (sequence, entry_hash)

    def committed(self, stripe: int, sequence: int, entry_hash: str) -> None:
        """Records a committed append of this process (commits of concurrent appends may
        be recorded out of order: this only ever raises what is known). Each committed
        entry counts once in ``carenet.identity.access_log.appends`` (servicekit.metrics)."""
        with self._lock:
            self._raise(stripe, sequence, entry_hash)
        metrics.domain().access_log_appended()

    def committed_heads(self) -> dict[int, tuple[int, str]]:
        """Per stripe, the highest committed head this process has seen or written (what
        the head journal publishes)."""
        with self._lock:
            return dict(self._known)

    def tampered(self) -> dict[int, int]:
        """The stripes found rolled back, with the highest sequence this process knew."""
        with self._lock:
            return dict(self._tampered)

    def forget(self, stripe: int) -> None:
        """Another writer moved the stripe's head: the next append reads it again."""
        with self._lock:
            self._heads.pop(stripe, None)

    def appended(self, stripe: int, sequence: int, entry_hash: str) -> None:
        """Records an append (its transaction may still roll back: the next append to the
        stripe then finds the head moved and reads it again)."""
        with self._lock:
            current = self._heads.get(stripe)
            if current is None or current[0] < sequence:
                self._heads[stripe] = (sequence, entry_hash)
        count = next(self._appended)
        for listener in self._listeners:
            listener(count)

    def on_append(self, listener: Callable[[int], None]) -> None:
        """Calls ``listener`` with the running count after every append of this process."""
        self._listeners.append(listener)

    def next_link(self, stripe: int, sequence: int, previous_hash: str, canonical: str) -> str:
        if stripe in self._tampered:
            raise AccessLogTampered("the access log's stripe head went back; see the alert")
        key_id = self.keyring.current_id
        return keyed_link(
            self.keyring.keys[key_id], key_id, stripe, sequence, previous_hash, canonical
        )

"""Signed checkpoints of the access log's stripe heads, their keys and store, and the whole
trust configuration (:class:`AccessLogTrust`): what identity.access_log's chain is anchored
to outside the database (see that module's docstring)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from identity.access_log import (
    CHECKPOINT_FORMAT,
    AccessLogKeyError,
    HmacKeyring,
    LogChain,
    _check_key_id,
    _key_files,
)

# ---------------------------------------------------------------- signed checkpoints


@dataclass(frozen=True)
class StripeHead:
    stripe: int
    sequence: int
    head: str


class CheckpointUnreadable(ValueError):
    """A stored checkpoint that is not a well-formed checkpoint document."""


def _utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Checkpoint:
    """The signed heads of every stripe at one moment."""

    time: dt.datetime
    key_id: str
    heads: tuple[StripeHead, ...]
    signature: bytes = b""
    # Stripes the publisher refused to sign because their head went back: (stripe, reason,
    # the sequence it knew). A signed record of the refusal, so verification reports it.
    refused: tuple[tuple[int, str, int], ...] = ()
    # A record of a head journal (the journal segment's name): the heads this process saw
    # committed that moved since its previous record, not every stripe's.
    journal: str = ""

    def payload(self) -> bytes:
        """What is signed: canonical JSON of everything but the signature."""
        content: dict[str, object] = {
            "format": CHECKPOINT_FORMAT,
            "time": _utc_text(self.time),
            "key_id": self.key_id,
            "heads": [[h.stripe, h.sequence, h.head] for h in self.heads],
        }
        if self.refused:
            content["refused"] = [list(r) for r in self.refused]
        if self.journal:
            content["journal"] = self.journal
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()

    def document(self) -> bytes:
        content = json.loads(self.payload())
        content["signature"] = base64.b64encode(self.signature).decode()
        return (json.dumps(content, sort_keys=True, indent=1) + "\n").encode()

    def line(self) -> bytes:
        """The signed document on one line (a head journal's record)."""
        content = json.loads(self.payload())
        content["signature"] = base64.b64encode(self.signature).decode()
        return (json.dumps(content, sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes) -> Checkpoint:
        try:
            content = json.loads(data)
            if content["format"] != CHECKPOINT_FORMAT:
                raise CheckpointUnreadable("unknown checkpoint format")
            heads = tuple(
                StripeHead(int(stripe), int(sequence), str(head))
                for stripe, sequence, head in content["heads"]
            )
            time = dt.datetime.fromisoformat(content["time"])
            if time.tzinfo is None:
                raise CheckpointUnreadable("checkpoint time without a zone")
            refused = tuple(
                (int(stripe), str(reason), int(sequence))
                for stripe, reason, sequence in content.get("refused", ())
            )
            return cls(
                time=time,
                key_id=str(content["key_id"]),
                heads=heads,
                signature=base64.b64decode(content.get("signature", ""), validate=True),
                refused=refused,
                journal=str(content.get("journal", "")),
            )
        except CheckpointUnreadable:
            raise
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise CheckpointUnreadable("not a checkpoint document") from exc


class CheckpointSigner:
    """The Ed25519 private key that signs checkpoints, with its key id."""

    def __init__(self, key_id: str, private_key: Ed25519PrivateKey) -> None:
        self.key_id = _check_key_id(key_id)
        self._private_key = private_key

    @classmethod
    def from_pem_file(cls, path: Path, key_id: str) -> CheckpointSigner:
        """A PKCS#8 PEM file (``openssl genpkey -algorithm ed25519``)."""
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise AccessLogKeyError(f"{path} does not hold a PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise AccessLogKeyError(f"{path} is not an Ed25519 private key")
        return cls(key_id, key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._private_key.public_key()

    def sign(
        self,
        heads: Sequence[StripeHead],
        time: dt.datetime,
        refused: Sequence[tuple[int, str, int]] = (),
        journal: str = "",
    ) -> Checkpoint:
        unsigned = Checkpoint(
            time, self.key_id, tuple(heads), refused=tuple(refused), journal=journal
        )
        signature = self._private_key.sign(unsigned.payload())
        return Checkpoint(time, self.key_id, unsigned.heads, signature, unsigned.refused, journal)


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class PublicKeyring:
    """The public keys checkpoints may be signed with, by key id (old ones stay, so that
    checkpoints signed before a rotation still verify)."""

    keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)

    @classmethod
    def from_directory(cls, directory: Path) -> PublicKeyring:
        """One file per key, ``<key id>.pem`` (SubjectPublicKeyInfo PEM)."""
        keys: dict[str, Ed25519PublicKey] = {}
        for path in _key_files(directory):
            key_id = _check_key_id(path.name.removesuffix(".pem"))
            try:
                key = serialization.load_pem_public_key(path.read_bytes())
            except (ValueError, TypeError) as exc:
                raise AccessLogKeyError(f"{path} does not hold a PEM public key") from exc
            if not isinstance(key, Ed25519PublicKey):
                raise AccessLogKeyError(f"{path} is not an Ed25519 public key")
            keys[key_id] = key
        return cls(keys)

    def with_key(self, key_id: str, key: Ed25519PublicKey) -> PublicKeyring:
        known = self.keys.get(key_id)
        if known is not None and public_key_pem(known) != public_key_pem(key):
            raise AccessLogKeyError(
                f"public key {key_id!r} differs from the signing key of that id"
            )
        return PublicKeyring({**self.keys, key_id: key})

    def problem(self, checkpoint: Checkpoint) -> str | None:
        """Why the checkpoint's signature is not acceptable, or None when it is."""
        key = self.keys.get(checkpoint.key_id)
        if key is None:
            return "CHECKPOINT_KEY_UNKNOWN"
        try:
            key.verify(checkpoint.signature, checkpoint.payload())
        except InvalidSignature:
            return "CHECKPOINT_SIGNATURE_INVALID"
        return None


@dataclass(frozen=True)
class StoredCheckpoint:
    name: str
    data: bytes


class CheckpointStore(Protocol):
    """Where checkpoints are published: outside the database, append-only. An object store
    with object lock (write once) fits the same two methods."""

    def publish(self, checkpoint: Checkpoint) -> str:
        """Stores a new checkpoint under a new name, never replacing one; returns the name."""
        ...

    def stored(self) -> Iterator[StoredCheckpoint]:
        """Every stored checkpoint, oldest first."""
        ...

    def append_journal(self, segment: str, record: bytes) -> None:
        """Appends one record (a line) to a head journal segment, durably, creating it."""
        ...

    def journal(self, since: dt.datetime | None = None) -> Iterator[StoredCheckpoint]:
        """Every record of every head journal segment started at or after ``since`` (all
        without it), named ``<segment>#<line>``, oldest segment first."""
        ...

    def prune_journal(self, before: dt.datetime) -> int:
        """Removes the head journal segments started before ``before`` (never a
        checkpoint); returns how many. A store that cannot delete keeps them."""
        ...


def journal_segment_name(start: dt.datetime, suffix: str) -> str:
    """``journal-<start, UTC>-<suffix>.jsonl``: names sort by the segment's start."""
    stamp = start.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"journal-{stamp}-{suffix}.jsonl" if suffix else f"journal-{stamp}"


class DirectoryCheckpointStore:
    """One file per checkpoint in a directory (a volume the database role cannot write).

    A file appears complete or not at all (written aside, then hard-linked under its final
    name, which fails rather than replace an existing file) and is made read-only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def publish(self, checkpoint: Checkpoint) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = checkpoint.time.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"checkpoint-{stamp}-{secrets.token_hex(4)}.json"
        aside = self.directory / f".{name}.tmp"
        with aside.open("xb") as out:
            out.write(checkpoint.document())
            out.flush()
            os.fsync(out.fileno())
        try:
            os.chmod(aside, 0o444)
            os.link(aside, self.directory / name)
        finally:
            aside.unlink()
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return name

    def stored(self) -> Iterator[StoredCheckpoint]:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.json")):
            if path.is_file() and not path.name.startswith("."):
                yield StoredCheckpoint(path.name, path.read_bytes())

    def append_journal(self, segment: str, record: bytes) -> None:
        """``O_APPEND`` and fsync: a record is on the volume once this returns. A segment
        belongs to one process; a record cut short by a crash is unreadable (reported)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / segment, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, record)
            os.fsync(fd)
        finally:
            os.close(fd)

    def journal(self, since: dt.datetime | None = None) -> Iterator[StoredCheckpoint]:
        if not self.directory.is_dir():
            return
        after = "" if since is None else journal_segment_name(since, "")
        for path in sorted(self.directory.glob("journal-*.jsonl")):
            if path.is_file() and path.name >= after:
                for number, line in enumerate(path.read_bytes().splitlines(), start=1):
                    if line.strip():
                        yield StoredCheckpoint(f"{path.name}#{number}", line)

    def prune_journal(self, before: dt.datetime) -> int:
        if not self.directory.is_dir():
            return 0
        bound, removed = journal_segment_name(before, ""), 0
        for path in sorted(self.directory.glob("journal-*.jsonl")):
            if path.name < bound:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


# ---------------------------------------------------------------- the whole configuration


@dataclass
class AccessLogTrust:
    """The chain keys, the checkpoint keys and store, and when to publish checkpoints."""

    chain: LogChain
    public_keys: PublicKeyring = field(default_factory=PublicKeyring)
    signer: CheckpointSigner | None = None
    store: CheckpointStore | None = None
    checkpoint_every_entries: int = 10_000
    checkpoint_every_seconds: float = 300.0
    # How often the head journal publishes the heads this process saw committed (0: never),
    # and how long its segments are kept once a checkpoint supersedes them (0: for ever).
    journal_every_seconds: float = 1.0
    journal_keep_seconds: float = 7 * 24 * 3600.0
    # The most entries one VerifyAccessLog call checks (a longer walk goes on by page token).
    verify_max_entries: int = 200_000
    # The time source of verification's CHECKPOINTS_MISSING rule, and when this process
    # started (an empty store is a problem only once it has been up for an interval).
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    started: dt.datetime | None = None
    # The (stripe, known sequence) of rolled-back stripes whose refusal this process signed.
    refusals_published: set[tuple[int, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()
        if (self.signer is None) != (self.store is None):
            raise AccessLogKeyError("checkpoints need both a signing key and a store")
        if self.signer is not None:
            self.public_keys = self.public_keys.with_key(self.signer.key_id, self.signer.public_key)

    @classmethod
    def unconfigured(cls, pepper: bytes) -> AccessLogTrust:
        """The chain keyed with the key derived from the pepper, and no checkpoints."""
        return cls(LogChain(HmacKeyring.derived(pepper)))

    @classmethod
    def from_files(
        cls,
        pepper: bytes,
        *,
        hmac_keys_dir: str = "",
        hmac_key_id: str = "",
        signing_key_file: str = "",
        signing_key_id: str = "",
        public_keys_dir: str = "",
        checkpoint_dir: str = "",
        every_entries: int = 10_000,
        every_seconds: float = 300.0,
        journal_every_seconds: float = 1.0,
        journal_keep_seconds: float = 7 * 24 * 3600.0,
        verify_max_entries: int = 200_000,
    ) -> AccessLogTrust:
        """The configuration the settings name (see the identity README); raises
        :class:`AccessLogKeyError` naming what is missing or unusable."""
        if hmac_keys_dir and not hmac_key_id:
            raise AccessLogKeyError("a chain key directory needs the current key id")
        if hmac_key_id and not hmac_keys_dir:
            raise AccessLogKeyError("a current chain key id needs the key directory")
        keyring = (
            HmacKeyring.from_directory(Path(hmac_keys_dir), hmac_key_id, pepper)
            if hmac_keys_dir
            else HmacKeyring.derived(pepper)
        )
        if bool(signing_key_file) != bool(signing_key_id):
            raise AccessLogKeyError("the checkpoint signing key needs both its file and its id")
        if bool(signing_key_file) != bool(checkpoint_dir):
            raise AccessLogKeyError("checkpoints need both a signing key and a store directory")
        if (
            every_entries < 1
            or every_seconds <= 0
            or min(journal_every_seconds, journal_keep_seconds) < 0
        ):
            raise AccessLogKeyError("checkpoint intervals must be positive")
        if not 1 <= verify_max_entries <= 2**31 - 1:
            raise AccessLogKeyError("the verification entry limit must be 1 to 2147483647")
        return cls(
            chain=LogChain(keyring),
            public_keys=PublicKeyring.from_directory(Path(public_keys_dir))
            if public_keys_dir
            else PublicKeyring(),
            signer=CheckpointSigner.from_pem_file(Path(signing_key_file), signing_key_id)
            if signing_key_file
            else None,
            store=DirectoryCheckpointStore(Path(checkpoint_dir)) if checkpoint_dir else None,
            checkpoint_every_entries=every_entries,
            checkpoint_every_seconds=every_seconds,
            journal_every_seconds=journal_every_seconds,
            journal_keep_seconds=journal_keep_seconds,
            verify_max_entries=verify_max_entries,
        )

    @property
    def checkpoints(self) -> bool:
        return self.store is not None

"""The access log's keys, links and checkpoints, without a database."""

from __future__ import annotations

import base64
import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from identity.access_log import DERIVED_KEY_ID, AccessLogKeyError, HmacKeyring, keyed_link
from identity.access_log_trust import (
    AccessLogTrust,
    Checkpoint,
    CheckpointSigner,
    CheckpointUnreadable,
    DirectoryCheckpointStore,
    PublicKeyring,
    StripeHead,
)

from ..log_keys import PEPPER, KeyFiles

KEY = b"k" * 32
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def test_a_keyed_link_covers_the_key_its_id_the_position_the_predecessor_and_the_content() -> None:
    base = keyed_link(KEY, "k1", 0, 1, "0" * 64, "{}")
    assert len(base) == 64
    assert keyed_link(b"j" * 32, "k1", 0, 1, "0" * 64, "{}") != base
    assert keyed_link(KEY, "k2", 0, 1, "0" * 64, "{}") != base
    assert keyed_link(KEY, "k1", 1, 1, "0" * 64, "{}") != base
    assert keyed_link(KEY, "k1", 0, 2, "0" * 64, "{}") != base
    assert keyed_link(KEY, "k1", 0, 1, "f" * 64, "{}") != base
    assert keyed_link(KEY, "k1", 0, 1, "0" * 64, '{"a":1}') != base
    # Position fields cannot be shifted into one another.
    assert keyed_link(KEY, "k1", 1, 11, "0" * 64, "{}") != keyed_link(
        KEY, "k1", 11, 1, "0" * 64, "{}"
    )


def test_the_chain_keyring_reads_one_file_per_key_as_a_secret_volume_mounts_it(
    tmp_path: Path,
) -> None:
    keys = KeyFiles(tmp_path)
    keys.add_chain_key("2026-01")
    keys.add_chain_key("2026-07")
    # What Kubernetes puts beside the keys of a Secret volume.
    (keys.hmac_dir / "..2026_12_01_09_00_00.123").mkdir()
    (keys.hmac_dir / "..data").symlink_to(keys.hmac_dir / "..2026_12_01_09_00_00.123")
    ring = HmacKeyring.from_directory(keys.hmac_dir, "2026-07", PEPPER)
    assert ring.current_id == "2026-07"
    assert set(ring.keys) == {"2026-01", "2026-07", DERIVED_KEY_ID}
    assert ring.link("2026-01", 0, 1, "0" * 64, "{}") is not None
    assert ring.link("2025-01", 0, 1, "0" * 64, "{}") is None


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("short", base64.b64encode(os.urandom(16)).decode(), "shorter than 32 bytes"),
        ("not-base64", "%%%%", "does not hold a base64 key"),
        ("bad:id", base64.b64encode(os.urandom(32)).decode(), "must match"),
    ],
)
def test_an_unusable_chain_key_file_fails_naming_the_file_not_the_key(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(AccessLogKeyError, match=message) as failure:
        HmacKeyring.from_directory(tmp_path, name, PEPPER)
    assert content not in str(failure.value)


def test_the_current_chain_key_must_be_in_the_keyring(tmp_path: Path) -> None:
    keys = KeyFiles(tmp_path)
    keys.add_chain_key("2026-01")
    with pytest.raises(AccessLogKeyError, match="not in the keyring"):
        HmacKeyring.from_directory(keys.hmac_dir, "2026-07", PEPPER)


def test_without_configured_keys_the_chain_key_is_derived_from_the_pepper() -> None:
    one, same, other = (
        HmacKeyring.derived(PEPPER),
        HmacKeyring.derived(PEPPER),
        HmacKeyring.derived(b"another pepper"),
    )
    assert one.current_id == DERIVED_KEY_ID
    assert one.keys == same.keys
    assert one.keys != other.keys
    assert one.keys[DERIVED_KEY_ID] != PEPPER


def _signed(heads: tuple[StripeHead, ...] = (StripeHead(0, 3, "a" * 64),)) -> Checkpoint:
    return CheckpointSigner("sign-1", Ed25519PrivateKey.generate()).sign(heads, T0)


def test_a_checkpoint_document_round_trips_and_verifies_with_its_public_key(
    tmp_path: Path,
) -> None:
    private = Ed25519PrivateKey.generate()
    signer = CheckpointSigner("sign-1", private)
    checkpoint = signer.sign([StripeHead(0, 3, "a" * 64), StripeHead(1, 0, "0" * 64)], T0)
    parsed = Checkpoint.parse(checkpoint.document())
    assert parsed == checkpoint
    ring = PublicKeyring({"sign-1": private.public_key()})
    assert ring.problem(parsed) is None


@pytest.mark.parametrize(
    "changed",
    [
        {"heads": (StripeHead(0, 3, "b" * 64),)},
        {"heads": (StripeHead(0, 4, "a" * 64),)},
        {"heads": (StripeHead(1, 3, "a" * 64),)},
        {"time": T0 + dt.timedelta(seconds=1)},
        {"key_id": "sign-2"},
    ],
)
def test_a_checkpoint_changed_after_signing_does_not_verify(changed: dict[str, object]) -> None:
    private = Ed25519PrivateKey.generate()
    good = CheckpointSigner("sign-1", private).sign([StripeHead(0, 3, "a" * 64)], T0)
    fields = {"time": good.time, "key_id": good.key_id, "heads": good.heads} | changed
    forged = Checkpoint(signature=good.signature, **fields)  # type: ignore[arg-type]
    ring = PublicKeyring({"sign-1": private.public_key(), "sign-2": private.public_key()})
    assert ring.problem(forged) == "CHECKPOINT_SIGNATURE_INVALID"


def test_a_checkpoint_signed_with_an_unknown_key_id_is_refused() -> None:
    assert PublicKeyring().problem(_signed()) == "CHECKPOINT_KEY_UNKNOWN"


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"[]", b'{"format": "other"}', b'{"format": "carenet.identity.access-log'],
)
def test_what_is_not_a_checkpoint_document_is_unreadable(data: bytes) -> None:
    with pytest.raises(CheckpointUnreadable):
        Checkpoint.parse(data)


def test_the_directory_store_adds_read_only_files_and_never_replaces_one(tmp_path: Path) -> None:
    store = DirectoryCheckpointStore(tmp_path / "checkpoints")
    first, second = store.publish(_signed()), store.publish(_signed())
    assert first != second
    stored = list(store.stored())
    assert [s.name for s in stored] == sorted([first, second])
    for name in (first, second):
        path = tmp_path / "checkpoints" / name
        assert path.stat().st_mode & 0o222 == 0
    # Files being written (hidden) are not read as checkpoints.
    (tmp_path / "checkpoints" / ".checkpoint-x.json.tmp").write_text("{")
    assert len(list(store.stored())) == 2
    # A name that exists is never replaced.
    existing = tmp_path / "checkpoints" / first
    aside = tmp_path / "checkpoints" / "other.json"
    aside.write_text("x")
    with pytest.raises(FileExistsError):
        os.link(aside, existing)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"hmac_keys_dir": "/nowhere"}, "needs the current key id"),
        ({"hmac_key_id": "k1"}, "needs the key directory"),
        ({"signing_key_file": "/nowhere.pem"}, "both its file and its id"),
        ({"checkpoint_dir": "/nowhere"}, "both a signing key and a store"),
        ({"every_entries": 0}, "must be positive"),
        ({"verify_max_entries": 0}, "verification entry limit"),
        ({"verify_max_entries": 2**31}, "verification entry limit"),
    ],
)
def test_incomplete_access_log_settings_fail_at_start(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(AccessLogKeyError, match=message):
        AccessLogTrust.from_files(PEPPER, **settings)  # type: ignore[arg-type]


def test_the_current_signing_key_is_always_a_known_public_key(tmp_path: Path) -> None:
    keys = KeyFiles(tmp_path)
    keys.add_chain_key("chain-1")
    keys.add_signing_key("sign-1")
    (keys.public_dir / "sign-1.pem").unlink()
    trust = keys.trust("chain-1", "sign-1")
    assert set(trust.public_keys.keys) == {"sign-1"}
    # A public key of that id that is not the signing key's is refused.
    keys.add_signing_key("sign-2")
    (keys.public_dir / "sign-2.pem").rename(keys.public_dir / "sign-1.pem")
    with pytest.raises(AccessLogKeyError, match="differs from the signing key"):
        keys.trust("chain-1", "sign-1")

"""Access-log keys on disk, as the Secrets would mount them, and what an insider with every
privilege on identity's database (but not those keys) can do to the log."""

from __future__ import annotations

import base64
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.rows import dict_row
from sqlalchemy.engine import make_url

from identity.access_log_trust import AccessLogTrust, public_key_pem
from identity.models import GENESIS_HASH, AccessLogEntry, LogRecord, chain_hash
from identity.use_cases.deps import Deps

PEPPER = b"log-test-pepper"


@dataclass
class KeyFiles:
    """A chain-key directory, signing keys and a public-key directory under ``root``."""

    root: Path

    @property
    def hmac_dir(self) -> Path:
        return self.root / "hmac"

    @property
    def public_dir(self) -> Path:
        return self.root / "public"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    def add_chain_key(self, key_id: str) -> None:
        self.hmac_dir.mkdir(parents=True, exist_ok=True)
        (self.hmac_dir / key_id).write_text(base64.b64encode(os.urandom(32)).decode() + "\n")

    def add_signing_key(self, key_id: str) -> Path:
        """Writes the private key (returned) and its public key into the public directory."""
        key = Ed25519PrivateKey.generate()
        private = self.root / "signing" / f"{key_id}.pem"
        private.parent.mkdir(parents=True, exist_ok=True)
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.public_dir.mkdir(parents=True, exist_ok=True)
        (self.public_dir / f"{key_id}.pem").write_bytes(public_key_pem(key.public_key()))
        return private

    def trust(self, chain_key_id: str, signing_key_id: str) -> AccessLogTrust:
        return AccessLogTrust.from_files(
            PEPPER,
            hmac_keys_dir=str(self.hmac_dir),
            hmac_key_id=chain_key_id,
            signing_key_file=str(self.root / "signing" / f"{signing_key_id}.pem"),
            signing_key_id=signing_key_id,
            public_keys_dir=str(self.public_dir),
            checkpoint_dir=str(self.checkpoint_dir),
        )


T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def record(n: int) -> LogRecord:
    return LogRecord(
        event="AUTHORIZE",
        event_time=T0 + dt.timedelta(seconds=n),
        patient_id="p-0001",
        care_group_id="cg-zuidoost",
        user_id="gp-user",
        responsible_user="",
        organisation_id="gp-de-linde",
        roles="gp",
        data_category="care-plan",
        action="read",
        purpose="",
        decision="permit",
        basis="care-relationship",
        reason="CARE_RELATIONSHIP",
        emergency=False,
        emergency_reason="",
        access_point="kis",
    )


def append(deps: Deps, stripe: int, count: int) -> None:
    """``count`` entries on ``stripe``, alternately on the autocommit path (Authorize's one
    statement) and in a transaction (the other use cases)."""
    for n in range(count):
        factory = deps.single_statement_uow if n % 2 else deps.uow
        with factory() as uow:
            assert uow.repo.append_log(record(n), stripe) is not None
            uow.commit()


# ---------------------------------------------------------------- the insider


def superuser(url: str) -> psycopg.Connection[dict[str, object]]:
    return psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
        row_factory=dict_row,
    )


def without_triggers(conn: psycopg.Connection[dict[str, object]]) -> None:
    """What only a superuser can do: stop the append-only triggers for this session."""
    conn.execute("SET session_replication_role = replica")


def stripe_rows(
    conn: psycopg.Connection[dict[str, object]], stripe: int
) -> list[dict[str, object]]:
    return conn.execute(
        "SELECT * FROM access_log WHERE stripe = %s ORDER BY sequence", (stripe,)
    ).fetchall()


def canonical(row: dict[str, object]) -> str:
    return AccessLogEntry(**{name: row[name] for name in AccessLogEntry.HASHED_FIELDS}).canonical()


def recompute_chain(
    conn: psycopg.Connection[dict[str, object]],
    stripe: int,
    *,
    from_sequence: int = 1,
    unkeyed: bool = False,
) -> None:
    """Relinks the stripe from ``from_sequence`` on with SHA-256, as the log did before it
    was keyed (marking the entries unkeyed if asked), and moves the head row to the new
    end: the best an insider without the chain key can do."""
    previous = previous_of_last = GENESIS_HASH
    rows = stripe_rows(conn, stripe)
    for row in rows:
        if int(str(row["sequence"])) < from_sequence:
            previous_of_last, previous = previous, str(row["entry_hash"])
            continue
        entry_hash = chain_hash(previous, canonical(row))
        conn.execute(
            "UPDATE access_log SET previous_hash = %s, entry_hash = %s,"
            " key_id = CASE WHEN %s THEN '' ELSE key_id END WHERE id = %s",
            (previous, entry_hash, unkeyed, row["id"]),
        )
        previous_of_last, previous = previous, entry_hash
    conn.execute(
        "UPDATE access_log_head SET last_sequence = %s, last_hash = %s, previous_hash = %s"
        " WHERE id = %s",
        (len(rows), previous, previous_of_last, stripe),
    )


def cut_stripe(conn: psycopg.Connection[dict[str, object]], stripe: int, keep: int) -> None:
    """Deletes the stripe's entries after the first ``keep`` and moves its head row back to
    the last one kept, so that the keyed chain that remains is intact."""
    conn.execute("DELETE FROM access_log WHERE stripe = %s AND sequence > %s", (stripe, keep))
    rows = stripe_rows(conn, stripe)
    last = rows[-1] if rows else {"entry_hash": GENESIS_HASH, "previous_hash": GENESIS_HASH}
    conn.execute(
        "UPDATE access_log_head SET last_sequence = %s, last_hash = %s, previous_hash = %s"
        " WHERE id = %s",
        (keep, last["entry_hash"], last["previous_hash"], stripe),
    )

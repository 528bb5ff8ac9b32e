"""Turns: transaction-scoped PostgreSQL advisory locks, taken by the repository only.

A lock's key is one bigint (``pg_advisory_xact_lock(int8)``): the first 8 bytes of BLAKE2b
over the kind of turn, the care group and the name of what is locked. A 64-bit key cannot
be hit on purpose: with a 32-bit hash (PostgreSQL's ``hashtext``) a care group's admin, who
chooses its organisations' ids, found an id whose turn was another care group's practice's
in about half a minute of CPU, and so could hold that practice's ingests up.
"""

from __future__ import annotations

import hashlib

import psycopg.errors
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

LOCK_INGEST = 1  # an ingest of a record holder
LOCK_REPORTS = 2  # the reports of a contract (or the care group's own)

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
# Sets the transaction's lock_timeout and answers the one it replaces (read first).
_SET_LOCK_TIMEOUT = text(
    "WITH previous AS MATERIALIZED (SELECT current_setting('lock_timeout') AS value)"
    " SELECT value, set_config('lock_timeout', :timeout, true) FROM previous"
)
_RESTORE_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :previous, true)")


def advisory_key(kind: int, care_group_id: str, name: str) -> int:
    """The advisory-lock key of ``name`` of kind ``kind`` in ``care_group_id``."""
    digest = hashlib.blake2b(
        f"{kind}\x1f{care_group_id}\x1f{name}".encode(), digest_size=8, person=b"outcomes-lock"
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def take_turn(session: Session, kind: int, care_group_id: str, name: str) -> None:
    """Waits for the turn of ``name`` and holds it until the transaction ends."""
    session.execute(_LOCK, {"key": advisory_key(kind, care_group_id, name)})


def take_turn_within(
    session: Session, kind: int, care_group_id: str, name: str, timeout_seconds: float
) -> bool:
    """:func:`take_turn`, waiting at most ``timeout_seconds``: False when the turn did not
    come (the transaction is then aborted: roll it back). The transaction's own
    ``lock_timeout`` is back once the turn is taken."""
    params = {"timeout": f"{max(1, round(timeout_seconds * 1000))}ms"}
    previous = session.execute(_SET_LOCK_TIMEOUT, params).one()[0]
    try:
        take_turn(session, kind, care_group_id, name)
    except DBAPIError as error:
        if isinstance(error.orig, psycopg.errors.LockNotAvailable):
            return False
        raise
    session.execute(_RESTORE_LOCK_TIMEOUT, {"previous": previous})
    return True

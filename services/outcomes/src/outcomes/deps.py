"""The dependencies of the outcomes use cases, built once by main.py (or a test)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from outcomes.unit_of_work import UnitOfWork
from servicekit.delegation import Delegations
from servicekit.identity_client import IdentityClient


@dataclass
class Deps:
    uow: Callable[[], UnitOfWork]
    identity: IdentityClient
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    # Resolves the person a delegate (a practice's KIS) acts for, before every call.
    delegations: Delegations | None = None
    ingest_chunk_rows: int = 5000
    ingest_lock_timeout_seconds: float = 10.0

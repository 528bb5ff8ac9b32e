"""What the referral use cases depend on, built once by main.py (or a test)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from referral.unit_of_work import UnitOfWork
from servicekit.delegation import Delegations
from servicekit.identity_client import IdentityClient


@dataclass
class Deps:
    uow: Callable[[], UnitOfWork]
    identity: IdentityClient
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    # Called right after a CreateReferral commits, before the reply (fault injection).
    after_create_commit: Callable[[], None] | None = None
    watch_poll_seconds: float = 0.2
    watch_batch_size: int = 200
    sleep: Callable[[float], None] = time.sleep
    # Resolves the person a delegate acts for before every call (servicekit.delegation,
    # wired into the server); None only where no call can name one (unit tests).
    delegations: Delegations | None = None

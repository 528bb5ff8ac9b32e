"""What the careplan use cases depend on, in one place (built by :mod:`careplan.main`, or
from fakes in the unit tests)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from careplan.coordination import Coordinators
from careplan.unit_of_work import UnitOfWork
from servicekit.delegation import Delegations
from servicekit.identity_client import IdentityClient


@dataclass
class Deps:
    uow: Callable[[], UnitOfWork]
    identity: IdentityClient
    # Who a delegate acts for (the server resolves it before every call); None: a delegated
    # call keeps the client's own roles, so careplan's write rules refuse it.
    delegations: Delegations | None = None
    # Who coordinates a patient's care (identity, asked as the caller); None: nobody may
    # create a plan (fail closed).
    coordinators: Coordinators | None = None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex[:12])

"""Opens, commits and rolls back a session for the identity use cases."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import Any, Self

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from identity.models import MAX_LOG_STRIPES
from identity.repository import IdentityRepository
from servicekit.db import autocommit_row
from servicekit.uow import SqlAlchemyUnitOfWork


class LogStripes:
    """Which access-log hash chain a thread appends to. Threads take stripes in turn, so
    concurrent appends from one process rarely wait for each other's commit."""

    def __init__(self, count: int) -> None:
        if not 1 <= count <= MAX_LOG_STRIPES:
            raise ValueError(f"access-log stripes must be 1..{MAX_LOG_STRIPES}")
        self.count = count
        self._next = itertools.count()
        self._local = threading.local()

    def current(self) -> int:
        stripe: int | None = getattr(self._local, "stripe", None)
        if stripe is None:
            stripe = next(self._next) % self.count
            self._local.stripe = stripe
        return stripe


class UnitOfWork(SqlAlchemyUnitOfWork):
    """A session opened on first use, and the repository over it.

    With ``driver_engine`` (an autocommit unit on PostgreSQL), a statement run while no
    session is open goes straight to a pooled driver connection: a warm Authorize reads
    everything from caches and writes one statement, and so needs no session at all.
    """

    repo: IdentityRepository

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        stripes: LogStripes | None = None,
        *,
        postgres: bool = False,
        driver_engine: Engine | None = None,
    ):
        super().__init__(session_factory)
        self._stripes = stripes
        self._postgres = postgres
        self._driver_engine = driver_engine

    def __enter__(self) -> Self:
        self.repo = IdentityRepository(lambda: self.session, self._first_row, self._postgres)
        return self

    def _first_row(self, sql: str, params: Sequence[object]) -> tuple[Any, ...] | None:
        if self._driver_engine is None or self.has_session:
            row = self.session.connection().exec_driver_sql(sql, tuple(params)).first()
            return tuple(row) if row is not None else None
        return autocommit_row(self._driver_engine, sql, params)

    @property
    def log_stripe(self) -> int:
        """The access-log stripe this unit of work appends to."""
        return self._stripes.current() if self._stripes else 0

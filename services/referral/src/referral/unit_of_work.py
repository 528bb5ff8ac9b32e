"""Opens, commits and rolls back a session for the referral use cases."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from referral.caches import Caches
from referral.repository import ReferralRepository
from servicekit.db import make_session_factory
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    """The repository over a session opened on first use: a warm CreateReferral writes in
    one driver statement (see :meth:`first_row`) and needs no session. ``caches`` are the
    process's (the repository owns them); without, this unit of work has its own."""

    repo: ReferralRepository

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        driver_engine: Engine | None = None,
        caches: Caches | None = None,
    ) -> None:
        super().__init__(session_factory, driver_engine=driver_engine)
        self._caches = caches if caches is not None else Caches()

    def _start(self) -> None:
        self.repo = ReferralRepository(self, self._caches)

    def first_row(self, sql: str, params: Sequence[object]) -> tuple[Any, ...] | None:
        """One statement, in the open session's transaction if there is one, else on its own
        in autocommit on a connection of the engine's pool."""
        if self._driver_engine is None or self._session is not None:
            return super().first_row(sql, params)
        with self._driver_engine.connect() as conn:
            row = conn.exec_driver_sql(sql, tuple(params)).first()
            return tuple(row) if row is not None else None


def units_of_work(engine: Engine) -> Callable[[], UnitOfWork]:
    """The units of work of one process: one session factory and one set of caches over
    ``engine``; single statements outside a session run in autocommit on its pool."""
    sessions = make_session_factory(engine)
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    caches = Caches()
    return lambda: UnitOfWork(sessions, driver_engine=autocommit, caches=caches)

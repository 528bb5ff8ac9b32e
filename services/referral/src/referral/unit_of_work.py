"""Opens, commits and rolls back a session for the referral use cases."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from referral.caches import Caches
from referral.repository import ReferralRepository
from servicekit.db import make_session_factory
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    """The repository over a session opened on first use: a warm CreateReferral writes in
    one driver statement (see ``first_row``) and needs no session. ``caches`` are the
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


def units_of_work(engine: Engine) -> Callable[[], UnitOfWork]:
    """The units of work of one process: one session factory and one set of caches over
    ``engine``; a single statement outside a session runs in autocommit on a driver
    connection (servicekit.db.autocommit_row: measured at a fifth of the cost of one taken
    from the engine's pool in autocommit, see the README's benchmarks)."""
    sessions = make_session_factory(engine)
    caches = Caches()
    return lambda: UnitOfWork(sessions, driver_engine=engine, caches=caches)

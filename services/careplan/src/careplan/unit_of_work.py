"""Opens, commits and rolls back a session for the careplan use cases."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from careplan.repository import CarePlanRepository, PlanCache
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    """The repository over a session opened on first use: reading the current plan is one
    driver statement (see :meth:`first_row`) and needs no session. ``plans`` is the
    process's cache of decoded plans (without one, nothing is kept between units of work)."""

    repo: CarePlanRepository

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        driver_engine: Engine | None = None,
        plans: PlanCache | None = None,
    ) -> None:
        super().__init__(session_factory, driver_engine=driver_engine)
        self._plans = plans if plans is not None else PlanCache()

    def _start(self) -> None:
        self.repo = CarePlanRepository(self, self._plans)

"""Opens, commits and rolls back a session for the careplan use cases."""

from __future__ import annotations

from careplan.repository import CarePlanRepository
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    """The repository over a session opened on first use: reading the current plan is one
    driver statement on PostgreSQL (see :meth:`first_row`) and needs no session."""

    repo: CarePlanRepository

    def _start(self) -> None:
        self.repo = CarePlanRepository(self)

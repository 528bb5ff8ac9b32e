"""Opens, commits and rolls back a session for the outcomes use cases."""

from __future__ import annotations

from outcomes.repository import OutcomesRepository
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    repo: OutcomesRepository

    def _start(self) -> None:
        self.repo = OutcomesRepository(self)

"""Opens, commits and rolls back a session for the outcomes use cases."""

from __future__ import annotations

from sqlalchemy.orm import Session

from outcomes.repository import OutcomesRepository
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    repo: OutcomesRepository

    def _start(self, session: Session) -> None:
        self.repo = OutcomesRepository(session)

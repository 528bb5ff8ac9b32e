"""Opens, commits and rolls back a session for the careplan use cases."""

from __future__ import annotations

from sqlalchemy.orm import Session

from careplan.repository import CarePlanRepository
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    repo: CarePlanRepository

    def _start(self, session: Session) -> None:
        self.repo = CarePlanRepository(session)

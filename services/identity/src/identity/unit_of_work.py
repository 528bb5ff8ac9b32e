"""Opens, commits and rolls back a session for the identity use cases."""

from __future__ import annotations

from sqlalchemy.orm import Session

from identity.repository import IdentityRepository
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    repo: IdentityRepository

    def _start(self, session: Session) -> None:
        self.repo = IdentityRepository(session)

"""Opens, commits and rolls back a session for the referral use cases."""

from __future__ import annotations

from sqlalchemy.orm import Session

from referral.repository import ReferralRepository
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    repo: ReferralRepository

    def _start(self, session: Session) -> None:
        self.repo = ReferralRepository(session)

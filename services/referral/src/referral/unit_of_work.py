"""Opens, commits and rolls back a session for the referral use cases."""

from __future__ import annotations

from referral.repository import ReferralRepository
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    repo: ReferralRepository

    def _start(self) -> None:
        self.repo = ReferralRepository(self.session)

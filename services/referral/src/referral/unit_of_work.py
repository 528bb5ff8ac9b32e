"""Opens, commits and rolls back a session for the referral use cases."""

from __future__ import annotations

from referral.repository import ReferralRepository
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    """The repository over a session opened on first use: a warm CreateReferral writes in
    one driver statement on PostgreSQL (see :meth:`first_row`) and needs no session."""

    repo: ReferralRepository

    def _start(self) -> None:
        self.repo = ReferralRepository(self)

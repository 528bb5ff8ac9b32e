"""Opens, commits and rolls back a session for the outcomes use cases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from outcomes.repository import OutcomesRepository
from servicekit.uow import SqlAlchemyUnitOfWork


class UnitOfWork(SqlAlchemyUnitOfWork):
    repo: OutcomesRepository

    def _start(self) -> None:
        self.repo = OutcomesRepository(self)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: what the block wrote is undone when it raises, the rest of
        the unit of work stays (one item of a batch)."""
        with self.session.begin_nested():
            yield

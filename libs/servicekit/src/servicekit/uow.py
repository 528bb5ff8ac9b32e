"""The unit of work: the one place a session is opened, committed and rolled back."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker


class SqlAlchemyUnitOfWork:
    """Opens a session on ``with``; rolls back unless :meth:`commit` was called.

    Services subclass it and build their repositories in :meth:`_start`.
    """

    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def __enter__(self) -> Self:
        self.session = self._session_factory()
        self._start(self.session)
        return self

    def _start(self, session: Session) -> None:
        """Builds the repositories over ``session``."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() ends the transaction (rolling back anything not committed) and keeps the
        # loaded objects readable, detached; an explicit rollback would expire them.
        try:
            if exc_type is not None:
                self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

"""The unit of work: the one place a session is opened, committed and rolled back."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker


class SqlAlchemyUnitOfWork:
    """A session for the ``with`` block; rolls back unless :meth:`commit` was called.

    Services subclass it and build their repositories in :meth:`_start`. The session is
    opened when first used, so a unit of work that needs none (everything it reads is
    cached) costs nothing.
    """

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self._session_factory()
        return self._session

    @property
    def has_session(self) -> bool:
        return self._session is not None

    def __enter__(self) -> Self:
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
        session, self._session = self._session, None
        if session is None:
            return
        try:
            if exc_type is not None:
                session.rollback()
        finally:
            session.close()

    def commit(self) -> None:
        if self._session is not None:
            self._session.commit()

    def rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()

"""The unit of work: the one place a session is opened, committed and rolled back."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, ClassVar, Self

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from servicekit.db import autocommit_row


class SqlAlchemyUnitOfWork:
    """A session for the ``with`` block; rolls back unless :meth:`commit` was called.

    Services subclass it and build their repositories in :meth:`_start`. The session is
    opened when first used: a :class:`Repository` opens it only when it first queries, so a
    unit of work that reads from caches and runs one statement through :meth:`first_row`
    needs no session at all.
    """

    def __init__(
        self, session_factory: sessionmaker[Session], *, driver_engine: Engine | None = None
    ) -> None:
        self._session_factory = session_factory
        self._driver_engine = driver_engine
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self._session_factory()
        return self._session

    def __enter__(self) -> Self:
        self._start()
        return self

    def _start(self) -> None:
        """Builds the repositories."""

    def first_row(self, sql: str, params: Sequence[object]) -> tuple[Any, ...] | None:
        """Runs one statement (driver placeholders) and returns its first row: in the open
        session's transaction if there is one, else, given a ``driver_engine``, on its own in
        autocommit on a pooled driver connection, else in a new session."""
        if self._driver_engine is None or self._session is not None:
            row = self.session.connection().exec_driver_sql(sql, tuple(params)).first()
            return tuple(row) if row is not None else None
        return autocommit_row(self._driver_engine, sql, params)

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


class Repository:
    """Base of a service's repository: queries over its unit of work's session (opened on
    first use) and, for a hot statement, the unit of work's :meth:`~SqlAlchemyUnitOfWork.
    first_row`. A repository that names its ``request_record_model`` (a model with
    servicekit.request_records.RequestRecordColumns) answers
    servicekit.idempotency.RequestRecords."""

    request_record_model: ClassVar[type[Any] | None] = None

    def __init__(self, uow: SqlAlchemyUnitOfWork) -> None:
        self._uow = uow

    @property
    def session(self) -> Session:
        return self._uow.session

    def add(self, obj: object) -> None:
        """Adds a new row and flushes, so that database defaults and constraints apply now."""
        self.session.add(obj)
        self.session.flush()

    def _first_row(self, sql: str, params: Sequence[object]) -> tuple[Any, ...] | None:
        return self._uow.first_row(sql, params)

    # request records (servicekit.idempotency.RequestRecords)
    def request_record(self, caller: str, request_id: str) -> Any:
        return self.session.get(self._request_records(), (caller, request_id))

    def add_request_record(
        self, caller: str, request_id: str, method: str, fingerprint: str, resource_name: str
    ) -> None:
        self.add(
            self._request_records()(
                caller=caller,
                request_id=request_id,
                method=method,
                fingerprint=fingerprint,
                resource_name=resource_name,
            )
        )

    def _request_records(self) -> type[Any]:
        if self.request_record_model is None:
            raise TypeError(f"{type(self).__name__} names no request_record_model")
        return self.request_record_model

"""SQLAlchemy 2 engines and sessions for PostgreSQL (production, tests) and SQLite (local run)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker

from servicekit.telemetry import statement_span

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """Metadata with stable constraint names, so migrations diff cleanly."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on PostgreSQL and SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # No ping on checkout (it costs a round trip per transaction): a connection lost while
    # idle fails one call with UNAVAILABLE (see interceptors), which clients retry.
    return create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
    )


def autocommit(engine: Engine) -> Engine:
    """The same pool, without transactions: for use cases whose only write is one statement."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def autocommit_row(engine: Engine, sql: str, params: Sequence[object]) -> tuple[Any, ...] | None:
    """Runs one statement in autocommit on a pooled PostgreSQL driver connection and returns
    its first row: no session, no SQLAlchemy execution. For a hot statement that is atomic on
    its own; ``sql`` uses the driver's placeholders and is prepared on the connection."""
    pooled = engine.raw_connection()
    driver = pooled.driver_connection
    assert driver is not None
    try:
        driver.autocommit = True
        with statement_span(sql, engine.dialect.name), driver.cursor() as cursor:
            cursor.execute(sql, params, prepare=True)
            row: tuple[Any, ...] | None = cursor.fetchone() if cursor.description else None
        driver.autocommit = False
    except BaseException:
        pooled.invalidate()  # whatever state it is in, it does not go back to the pool
        raise
    finally:
        pooled.close()
    return row

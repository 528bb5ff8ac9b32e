"""SQLAlchemy 2 engines and sessions for PostgreSQL (production, tests and local runs).

Every PostgreSQL connection (the engine's pool and the driver connections beside it) runs
with the session time zone UTC, whatever the server, database or role default is: psycopg
returns a ``timestamptz`` in the session's zone, and on a server east of UTC a valid
``9999-12-31T23:59:59Z`` would come back as a moment in year 10000, which no Python datetime
holds (the read fails). It is set as a startup option of the connection (``-c
TimeZone=UTC``, added to any ``options`` the URL has), so it costs no round trip.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy import DateTime, Engine, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import Session, sessionmaker

from servicekit.telemetry import statement_span, tracing_configured

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
    """A timezone-aware UTC timestamp."""

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
    """An engine on a PostgreSQL URL (``postgresql+psycopg://...``).

    No ping on checkout (it costs a round trip per transaction): a connection lost while
    idle fails one call with UNAVAILABLE (see interceptors), which clients retry."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"a PostgreSQL URL is needed, not {parsed.drivername}://...")
    options = parsed.query.get("options", "")
    return create_engine(
        parsed,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"options": utc_options(options if isinstance(options, str) else "")},
    )


UTC_OPTION = "-c TimeZone=UTC"


def utc_options(options: str = "") -> str:
    """libpq startup ``options`` that set the session time zone to UTC, after any given."""
    return f"{options} {UTC_OPTION}".strip()


def utc_conninfo(conninfo: str) -> str:
    """A libpq connection string whose sessions run in UTC (see the module docstring)."""
    params = conninfo_to_dict(conninfo)
    return make_conninfo(conninfo, options=utc_options(str(params.get("options") or "")))


def autocommit(engine: Engine) -> Engine:
    """The same pool, without transactions: for use cases whose only write is one statement."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


class _DriverConnections:
    """Autocommit psycopg connections for single statements run outside SQLAlchemy: taken
    last-in first-out, at most ``keep`` kept idle, none kept past ``max_age`` seconds. A
    connection that fails is dropped; like the engine's pool (no ping), a connection lost
    while idle fails one call, which the interceptor answers with UNAVAILABLE."""

    def __init__(self, conninfo: str, keep: int, max_age: float = 1800.0) -> None:
        self.traced = tracing_configured()
        self._conninfo = conninfo
        self._keep = keep
        self._max_age = max_age
        self._idle: collections.deque[
            tuple[psycopg.Connection[Any], psycopg.Cursor[Any], float]
        ] = collections.deque()

    def first_row(self, sql: str, params: Sequence[object]) -> tuple[Any, ...] | None:
        try:
            conn, cursor, born = self._idle.pop()
        except IndexError:
            conn = psycopg.connect(self._conninfo, autocommit=True)
            cursor, born = conn.cursor(), time.monotonic()
        try:
            cursor.execute(sql, params, prepare=True)
            row: tuple[Any, ...] | None = cursor.fetchone()
        except BaseException:
            conn.close()
            raise
        if len(self._idle) < self._keep and time.monotonic() - born < self._max_age:
            self._idle.append((conn, cursor, born))
        else:
            conn.close()
        return row

    def close(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()


_driver_connections: weakref.WeakKeyDictionary[Engine, _DriverConnections] = (
    weakref.WeakKeyDictionary()
)
_driver_lock = threading.Lock()


def _connections_of(engine: Engine) -> _DriverConnections:
    found = _driver_connections.get(engine)
    if found is None:
        with _driver_lock:
            found = _driver_connections.get(engine)
            if found is None:
                url = engine.url.set(drivername="postgresql")
                size = getattr(engine.pool, "size", lambda: 10)()
                conninfo = utc_conninfo(url.render_as_string(hide_password=False))
                found = _DriverConnections(conninfo, keep=size)
                _driver_connections[engine] = found
                event.listen(engine, "engine_disposed", lambda _engine: found.close())
    return found


def autocommit_row(engine: Engine, sql: str, params: Sequence[object]) -> tuple[Any, ...] | None:
    """Runs one statement that returns rows, in autocommit, on a PostgreSQL driver connection
    kept beside ``engine``'s pool, and returns its first row: no session, no SQLAlchemy
    execution. For a hot statement that is atomic on its own; ``sql`` uses the driver's
    placeholders and is prepared on the connection."""
    connections = _connections_of(engine)
    if not connections.traced:
        return connections.first_row(sql, params)
    with statement_span(sql, "postgresql"):
        return connections.first_row(sql, params)

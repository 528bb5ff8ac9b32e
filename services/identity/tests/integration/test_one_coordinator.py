"""One open coordinating care relationship per patient, across all organisations, on real
PostgreSQL: the database refuses a second one, and migration 0005 voids the extra ones that
already exist (keeping the first)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from identity.use_cases.deps import Deps
from servicekit.migrations import upgrade
from testkit.database import fresh_database

from .test_open_relationships import _libpq, _new_patient, region

__all__ = ["region"]


def test_the_database_refuses_a_second_coordinating_practice(
    region: tuple[Deps, Engine],
) -> None:
    deps, engine = region
    patient_id = _new_patient(deps)  # gp-de-linde coordinates
    insert = text(
        "INSERT INTO care_relationships (id, patient_id, organisation_id, kind, start_time,"
        " end_time, create_time) VALUES (:id, :p, 'gp-het-anker', :kind, now(), NULL, now())"
    )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert, {"id": uuid.uuid4().hex, "p": patient_id, "kind": "coordinating"})
    with engine.begin() as conn:  # treating is not limited
        conn.execute(insert, {"id": uuid.uuid4().hex, "p": patient_id, "kind": "treating"})


def test_migration_0005_keeps_the_first_coordinator_and_voids_the_others() -> None:
    with fresh_database("identity_mig5") as url:
        upgrade("identity.migrations", url, "0004")
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO organisations (id, display_name, type, care_group_id, version,"
                " create_time, update_time) VALUES ('gp-a', 'A', 'gp-practice', 'cg', 1, now(),"
                " now()), ('gp-b', 'B', 'gp-practice', 'cg', 1, now(), now()),"
                " ('cg', 'CG', 'care-group', 'cg', 1, now(), now())"
            )
            conn.execute(
                "INSERT INTO patients (id, care_group_id, bsn_hash, facts_version, create_time,"
                " update_time) VALUES ('p1', 'cg', 'h1', 4, now(), now()),"
                " ('p2', 'cg', 'h2', 7, now(), now())"
            )
            conn.execute(
                "INSERT INTO care_relationships (id, patient_id, organisation_id, kind,"
                " start_time, end_time, create_time) VALUES"
                " ('first', 'p1', 'gp-a', 'coordinating', '2025-01-01Z', NULL, now()),"
                " ('second', 'p1', 'gp-b', 'coordinating', '2025-03-01Z', NULL, now()),"
                " ('treats', 'p1', 'gp-b', 'treating', '2025-03-01Z', NULL, now()),"
                " ('alone', 'p2', 'gp-b', 'coordinating', '2025-02-01Z', NULL, now())"
            )
        upgrade("identity.migrations", url)
        with psycopg.connect(_libpq(url)) as conn:
            rows: dict[str, bool] = dict(
                conn.execute(
                    "SELECT id, end_time IS NULL OR end_time > start_time FROM care_relationships"
                ).fetchall()
            )
            versions: dict[str, int] = dict(
                conn.execute("SELECT id, facts_version FROM patients").fetchall()
            )
        assert rows == {"first": True, "second": False, "treats": True, "alone": True}
        assert versions == {"p1": 5, "p2": 7}

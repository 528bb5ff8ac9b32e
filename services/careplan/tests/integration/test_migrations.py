"""Migrations run up from empty on PostgreSQL and match the models exactly."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from careplan.models import Base
from servicekit.migrations import pending_differences
from testkit.database import engine_on, migrated_database

TABLES = {"care_plans", "care_plan_revisions", "request_records", "event_cursors", "applied_events"}


def test_migrations_run_up_from_empty_on_postgresql_with_no_pending_differences() -> None:
    with (
        migrated_database("careplan_mig", "careplan.migrations") as url,
        engine_on(url) as engine,
    ):
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert pending_differences(engine, Base.metadata) == []


def test_a_revision_cannot_be_changed_or_deleted_on_postgresql(careplan_db: str) -> None:
    with engine_on(careplan_db) as engine:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO care_plans VALUES "
                    "('p-mig', 'cg', 'gp', 'active', 1, '{}', now(), now())"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO care_plan_revisions VALUES "
                    "('p-mig', 1, '{}', 'a', 'gp', 's', 'f', now())"
                )
            )
        for statement in (
            "UPDATE care_plan_revisions SET author = 'x' WHERE patient_id = 'p-mig'",
            "DELETE FROM care_plan_revisions WHERE patient_id = 'p-mig'",
        ):
            with pytest.raises(DBAPIError), engine.begin() as conn:
                conn.execute(text(statement))

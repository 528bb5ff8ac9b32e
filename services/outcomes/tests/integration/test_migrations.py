"""Migrations run up from empty on PostgreSQL and match the models exactly."""

from __future__ import annotations

from sqlalchemy import inspect

from outcomes.models import Base
from servicekit.db import make_engine
from servicekit.migrations import pending_differences, upgrade
from testkit.database import fresh_database


def test_migrations_run_up_from_empty_on_postgresql_with_no_autogenerate_diff() -> None:
    with fresh_database("outcomes_mig") as url:
        upgrade("outcomes.migrations", url)
        engine = make_engine(url)
        try:
            assert pending_differences(engine, Base.metadata) == []
            assert set(inspect(engine).get_table_names()) >= {
                "enrolments",
                "measurements",
                "indicator_definitions",
                "contracts",
                "reports",
                "cost_records",
            }
        finally:
            engine.dispose()

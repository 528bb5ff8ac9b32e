"""Migrations run up from empty on PostgreSQL and SQLite and match the models."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text

from referral.models import Base
from servicekit.db import make_engine
from servicekit.migrations import pending_differences, upgrade


def test_migrations_on_postgresql_match_the_models(referral_engine: Engine) -> None:
    assert pending_differences(referral_engine, Base.metadata) == []
    with referral_engine.connect() as conn:
        assert conn.execute(text("SELECT last_id >= 0 FROM outbox_head WHERE id = 1")).scalar_one()


def test_migrations_on_sqlite_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'referral.db'}"
    upgrade("referral.migrations", url)
    engine = make_engine(url)
    try:
        assert pending_differences(engine, Base.metadata) == []
        assert {"offers", "referrals", "referral_history", "outbox", "outbox_head"} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()

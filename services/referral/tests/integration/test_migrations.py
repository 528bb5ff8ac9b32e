"""Migrations run up from empty on PostgreSQL and match the models."""

from __future__ import annotations

from sqlalchemy import Engine, text

from referral.models import Base
from servicekit.migrations import pending_differences


def test_migrations_on_postgresql_match_the_models(referral_engine: Engine) -> None:
    assert pending_differences(referral_engine, Base.metadata) == []
    with referral_engine.connect() as conn:
        assert conn.execute(text("SELECT last_id >= 0 FROM outbox_head WHERE id = 1")).scalar_one()

"""initial schema

Create Date: 2026-11-23 15:08:07.072652
"""

import sqlalchemy as sa
from alembic import op

from servicekit.migration_steps import (
    columns,
    create_request_records,
    drop_tables,
    make_append_only,
    times,
)

revision: str = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "applied_events",
        *columns(sa.String(100), "event_id"),
        *columns(sa.BigInteger(), "position"),
        *columns(sa.String(128), "patient_id"),
        *columns(sa.Integer(), "plan_version"),
        *times("apply_time"),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_applied_events")),
    )
    op.create_table(
        "care_plans",
        *columns(sa.String(128), "patient_id"),
        *columns(sa.String(63), "care_group_id", "record_holder_id"),
        *columns(sa.String(32), "status"),
        *columns(sa.Integer(), "version"),
        *columns(sa.JSON(), "document"),
        *times("create_time", "update_time"),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_care_plans")),
    )
    op.create_index(op.f("ix_care_plans_care_group_id"), "care_plans", ["care_group_id"])
    op.create_table(
        "event_cursors",
        *columns(sa.String(63), "consumer"),
        *columns(sa.BigInteger(), "position"),
        *times("update_time"),
        sa.PrimaryKeyConstraint("consumer", name=op.f("pk_event_cursors")),
    )
    create_request_records()
    op.create_table(
        "care_plan_revisions",
        *columns(sa.String(128), "patient_id"),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        *columns(sa.JSON(), "document"),
        *columns(sa.String(200), "author"),
        *columns(sa.String(63), "organisation_id"),
        *columns(sa.Text(), "change_summary"),
        *columns(sa.String(300), "changed_fields"),
        *times("create_time"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["care_plans.patient_id"],
            name=op.f("fk_care_plan_revisions_patient_id_care_plans"),
        ),
        sa.PrimaryKeyConstraint("patient_id", "version", name=op.f("pk_care_plan_revisions")),
    )
    # Revisions are the plan's history: once written they are never changed or removed.
    make_append_only("care_plan_revisions")


def downgrade() -> None:
    drop_tables(
        "care_plan_revisions", "request_records", "event_cursors", "care_plans", "applied_events"
    )
    op.execute("DROP FUNCTION IF EXISTS care_plan_revisions_append_only()")

"""A measurement's source record id is unique per record holder: the key of
``uq_measurements_source_record`` becomes (holder_id, source_kind, source_org,
source_record_id).

Before, the key had no record holder, so one practice sending a source record id another
practice had sent (for its own patient) was refused as SOURCE_RECORD_CONFLICT: it learnt that
the id existed elsewhere, and could take an id before the practice it belongs to. Each
holder now has its own ids; a correction (the same holder, source and id, another value)
finds its row as before. Every row that satisfied the old key satisfies the new one.

A downgrade restores the old key, which fails while two holders share a source record id.

Create Date: 2026-12-07 13:30:00
"""

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"

CONSTRAINT = "uq_measurements_source_record"


def upgrade() -> None:
    op.drop_constraint(CONSTRAINT, "measurements", type_="unique")
    op.create_unique_constraint(
        CONSTRAINT,
        "measurements",
        ["holder_id", "source_kind", "source_org", "source_record_id"],
    )


def downgrade() -> None:
    op.drop_constraint(CONSTRAINT, "measurements", type_="unique")
    op.create_unique_constraint(
        CONSTRAINT, "measurements", ["source_kind", "source_org", "source_record_id"]
    )

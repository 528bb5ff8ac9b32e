"""measurements.holder_id (the record holder asked about on every read), measurement
revisions (the values a correction replaced), contracts.fingerprint (request_id reuse)

Measurements stored before this revision get their source organisation as record holder:
the organisation that supplied the value is the best the old rows say about whose record
it is. Contracts created before it have an empty fingerprint, so a retry of such a create
with its request_id is refused (REQUEST_ID_REUSED) rather than answered with a contract that
may belong to another request.

Create Date: 2026-12-07 09:00:00
"""

import sqlalchemy as sa
from alembic import op

import servicekit.db
import servicekit.migration_steps

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    servicekit.migration_steps.add_column("measurements", "holder_id", sa.String(length=63), "")
    op.execute("UPDATE measurements SET holder_id = source_org")
    servicekit.migration_steps.add_fingerprint("contracts")
    op.create_table(
        "measurement_revisions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "measurement_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("care_group_id", sa.String(length=63), nullable=False),
        sa.Column("patient_id", sa.String(length=128), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("measured_at", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("source_kind", sa.String(length=24), nullable=False),
        sa.Column("ingested_at", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurement_revisions")),
    )
    op.create_index(
        "ix_measurement_revisions_patient_code",
        "measurement_revisions",
        ["care_group_id", "code", "patient_id"],
        unique=False,
    )
    op.create_index(
        "ix_measurement_revisions_measurement",
        "measurement_revisions",
        ["measurement_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_measurement_revisions_measurement", table_name="measurement_revisions")
    op.drop_index("ix_measurement_revisions_patient_code", table_name="measurement_revisions")
    op.drop_table("measurement_revisions")
    servicekit.migration_steps.drop_fingerprint("contracts")
    servicekit.migration_steps.drop_column("measurements", "holder_id")

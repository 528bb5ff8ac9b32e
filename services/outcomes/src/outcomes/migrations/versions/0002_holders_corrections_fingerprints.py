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

from servicekit.migration_steps import (
    add_column,
    add_fingerprint,
    columns,
    drop_column,
    drop_fingerprint,
    serial,
    times,
)

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    add_column("measurements", "holder_id", sa.String(length=63), "")
    op.execute("UPDATE measurements SET holder_id = source_org")
    add_fingerprint("contracts")
    op.create_table(
        "measurement_revisions",
        serial(),
        *columns(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), "measurement_id"),
        *columns(sa.String(63), "care_group_id"),
        *columns(sa.String(128), "patient_id"),
        *columns(sa.String(32), "code"),
        *columns(sa.Float(), "value"),
        *columns(sa.String(32), "unit"),
        *times("measured_at"),
        *columns(sa.String(24), "source_kind"),
        *times("ingested_at", "superseded_at"),
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
    drop_fingerprint("contracts")
    drop_column("measurements", "holder_id")

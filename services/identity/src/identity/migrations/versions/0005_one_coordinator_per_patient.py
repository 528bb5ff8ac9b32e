"""at most one open coordinating care relationship per patient, across all organisations
(a partial unique index)

Open coordinating relationships that already break the rule are voided first: every open
coordinating relationship of a patient but the one that started first (on a tie: the
smaller id) gets end_time = start_time, so it never counted, and the patients'
facts_version is raised so that no replica keeps deciding on the old facts.

Create Date: 2026-12-07 07:30:00
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"

OPEN_COORDINATING = "kind = 'coordinating' AND end_time IS NULL"

DUPLICATES = sa.text(
    "SELECT r.id, r.patient_id FROM care_relationships r"
    " WHERE r.kind = 'coordinating' AND r.end_time IS NULL AND EXISTS ("
    "  SELECT 1 FROM care_relationships f"
    "  WHERE f.patient_id = r.patient_id AND f.kind = 'coordinating' AND f.end_time IS NULL"
    "   AND (f.start_time < r.start_time OR (f.start_time = r.start_time AND f.id < r.id)))"
)


def upgrade() -> None:
    bind = op.get_bind()
    duplicates = bind.execute(DUPLICATES).all()
    for rel_id, _patient_id in duplicates:
        bind.execute(
            sa.text("UPDATE care_relationships SET end_time = start_time WHERE id = :id"),
            {"id": rel_id},
        )
    for patient_id in sorted({patient_id for _rel_id, patient_id in duplicates}):
        bind.execute(
            sa.text("UPDATE patients SET facts_version = facts_version + 1 WHERE id = :id"),
            {"id": patient_id},
        )
    op.create_index(
        "uq_care_relationships_one_coordinator",
        "care_relationships",
        ["patient_id"],
        unique=True,
        postgresql_where=sa.text(OPEN_COORDINATING),
        sqlite_where=sa.text(OPEN_COORDINATING),
    )


def downgrade() -> None:
    op.drop_index("uq_care_relationships_one_coordinator", table_name="care_relationships")

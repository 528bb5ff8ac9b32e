"""people (the directory a delegate system client may act for), request_records.fingerprint
(a request_id reused with another request is refused), and at most one open care
relationship per patient, organisation and kind (a partial unique index)

Open duplicates that already exist are voided first: every open relationship of a
(patient, organisation, kind) but the one that started first gets end_time = start_time,
so it never counted, and the patients' facts_version is raised so that no replica keeps
deciding on the old facts.

Create Date: 2026-12-10 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from servicekit.migration_steps import add_fingerprint, columns, drop_fingerprint, times

revision: str = "0004"
down_revision: str | None = "0003"

OPEN = "end_time IS NULL"

# Open relationships that have an earlier-started (on a tie: smaller id) open twin.
DUPLICATES = sa.text(
    "SELECT r.id, r.patient_id FROM care_relationships r"
    " WHERE r.end_time IS NULL AND EXISTS ("
    "  SELECT 1 FROM care_relationships f"
    "  WHERE f.patient_id = r.patient_id AND f.organisation_id = r.organisation_id"
    "   AND f.kind = r.kind AND f.end_time IS NULL"
    "   AND (f.start_time < r.start_time OR (f.start_time = r.start_time AND f.id < r.id)))"
)


def upgrade() -> None:
    op.create_table(
        "people",
        *columns(sa.String(63), "id"),
        *columns(sa.String(200), "username", "display_name"),
        *columns(sa.String(63), "organisation_id", "care_group_id"),
        *columns(sa.String(300), "roles"),
        *columns(sa.Boolean(), "active"),
        *times("update_time"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
    )
    op.create_index(op.f("ix_people_organisation_id"), "people", ["organisation_id"])

    add_fingerprint()

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
        "uq_care_relationships_open",
        "care_relationships",
        ["patient_id", "organisation_id", "kind"],
        unique=True,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("uq_care_relationships_open", table_name="care_relationships")
    drop_fingerprint()
    op.drop_table("people")

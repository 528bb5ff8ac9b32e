"""initial schema

Create Date: 2026-11-23 15:11:37.140399
"""

import sqlalchemy as sa
from alembic import op

import servicekit.db
import servicekit.migration_steps

revision: str = "0001"
down_revision: str | None = None

LOG_STRIPES = 64  # identity.models.MAX_LOG_STRIPES

SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log "
    "BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END",
    "CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log "
    "BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END",
]


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("stripe", sa.SmallInteger(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("event_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("patient_id", sa.String(length=128), nullable=False),
        sa.Column("care_group_id", sa.String(length=63), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("responsible_user", sa.String(length=200), nullable=False),
        sa.Column("organisation_id", sa.String(length=63), nullable=False),
        sa.Column("roles", sa.String(length=300), nullable=False),
        sa.Column("data_category", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("basis", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=60), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("emergency_reason", sa.Text(), nullable=False),
        sa.Column("access_point", sa.String(length=200), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
        sa.UniqueConstraint("stripe", "sequence", name=op.f("uq_access_log_stripe")),
    )
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_access_log_care_group_id_id", ["care_group_id", "id"], unique=False
        )
        batch_op.create_index("ix_access_log_patient_id_id", ["patient_id", "id"], unique=False)

    op.create_table(
        "access_log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log_head")),
    )
    op.create_table(
        "organisations",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("care_group_id", sa.String(length=63), nullable=False),
        sa.Column("agb_code", sa.String(length=8), nullable=True),
        sa.Column("ura", sa.String(length=8), nullable=True),
        sa.Column("uzovi", sa.String(length=4), nullable=True),
        sa.Column("cbs_municipality_code", sa.String(length=6), nullable=True),
        sa.Column("service_account_client_id", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("create_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
    )
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_organisations_care_group_id"), ["care_group_id"], unique=False
        )

    op.create_table(
        "patients",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("care_group_id", sa.String(length=63), nullable=False),
        sa.Column("bsn_hash", sa.String(length=64), nullable=False),
        sa.Column("create_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("care_group_id", "bsn_hash", name=op.f("uq_patients_care_group_id")),
    )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_patients_care_group_id"), ["care_group_id"], unique=False
        )

    servicekit.migration_steps.create_request_records()
    op.create_table(
        "care_relationships",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("patient_id", sa.String(length=63), nullable=False),
        sa.Column("organisation_id", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("start_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("end_time", servicekit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("create_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_care_relationships_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_care_relationships_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_relationships")),
    )
    with op.batch_alter_table("care_relationships", schema=None) as batch_op:
        batch_op.create_index(
            "ix_care_relationships_patient_org", ["patient_id", "organisation_id"], unique=False
        )

    op.create_table(
        "consents",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("patient_id", sa.String(length=63), nullable=False),
        sa.Column("record_holder_type", sa.String(length=32), nullable=True),
        sa.Column("record_holder_id", sa.String(length=63), nullable=True),
        sa.Column("data_category", sa.String(length=32), nullable=False),
        sa.Column("requester_type", sa.String(length=32), nullable=True),
        sa.Column("requester_id", sa.String(length=63), nullable=True),
        sa.Column("start_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("end_time", servicekit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("withdraw_time", servicekit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("create_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_consents_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consents_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("consent_id", sa.String(length=63), nullable=False),
        sa.Column("patient_id", sa.String(length=63), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("event_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consents.id"], name=op.f("fk_consent_events_consent_id_consents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_events_patient_id"), ["patient_id"], unique=False
        )
    head = sa.table(
        "access_log_head",
        sa.column("id", sa.Integer),
        sa.column("last_sequence", sa.BigInteger),
        sa.column("last_hash", sa.String),
        sa.column("previous_hash", sa.String),
    )
    genesis = "0" * 64
    op.bulk_insert(
        head,
        [
            {"id": stripe, "last_sequence": 0, "last_hash": genesis, "previous_hash": genesis}
            for stripe in range(LOG_STRIPES)
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        # The access log is append-only (NEN 7513): no role may change or remove an entry.
        servicekit.migration_steps.make_append_only("access_log", truncate=True)
    else:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS access_log_no_update ON access_log")
        op.execute("DROP TRIGGER IF EXISTS access_log_no_truncate ON access_log")
        op.execute("DROP FUNCTION IF EXISTS access_log_append_only()")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_events_patient_id"))

    op.drop_table("consent_events")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consents_patient_id"))

    op.drop_table("consents")
    with op.batch_alter_table("care_relationships", schema=None) as batch_op:
        batch_op.drop_index("ix_care_relationships_patient_org")

    op.drop_table("care_relationships")
    op.drop_table("request_records")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patients_care_group_id"))

    op.drop_table("patients")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organisations_care_group_id"))

    op.drop_table("organisations")
    op.drop_table("access_log_head")
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_index("ix_access_log_patient_id_id")
        batch_op.drop_index("ix_access_log_care_group_id_id")

    op.drop_table("access_log")

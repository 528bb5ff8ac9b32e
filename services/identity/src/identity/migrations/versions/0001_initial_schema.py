"""initial schema

Create Date: 2026-11-23 15:11:37.140399
"""

import sqlalchemy as sa
from alembic import op

from servicekit.migration_steps import (
    columns,
    create_request_records,
    drop_tables,
    make_append_only,
    serial,
    times,
    versioned_columns,
)

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
        serial(),
        *columns(sa.SmallInteger(), "stripe"),
        *columns(sa.BigInteger(), "sequence"),
        *columns(sa.String(40), "event"),
        *times("event_time"),
        *columns(sa.String(128), "patient_id"),
        *columns(sa.String(63), "care_group_id"),
        *columns(sa.String(200), "user_id", "responsible_user"),
        *columns(sa.String(63), "organisation_id"),
        *columns(sa.String(300), "roles"),
        *columns(sa.String(32), "data_category"),
        *columns(sa.String(16), "action"),
        *columns(sa.String(200), "purpose"),
        *columns(sa.String(8), "decision"),
        *columns(sa.String(40), "basis"),
        *columns(sa.String(60), "reason"),
        *columns(sa.Boolean(), "emergency"),
        *columns(sa.Text(), "emergency_reason"),
        *columns(sa.String(200), "access_point"),
        *columns(sa.String(64), "previous_hash", "entry_hash"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
        sa.UniqueConstraint("stripe", "sequence", name=op.f("uq_access_log_stripe")),
    )
    op.create_index("ix_access_log_care_group_id_id", "access_log", ["care_group_id", "id"])
    op.create_index("ix_access_log_patient_id_id", "access_log", ["patient_id", "id"])
    op.create_table(
        "access_log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        *columns(sa.BigInteger(), "last_sequence"),
        *columns(sa.String(64), "last_hash", "previous_hash"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log_head")),
    )
    op.create_table(
        "organisations",
        *columns(sa.String(63), "id"),
        *columns(sa.String(200), "display_name"),
        *columns(sa.String(32), "type"),
        *columns(sa.String(63), "care_group_id"),
        *columns(sa.String(8), "agb_code", "ura", nullable=True),
        *columns(sa.String(4), "uzovi", nullable=True),
        *columns(sa.String(6), "cbs_municipality_code", nullable=True),
        *columns(sa.String(100), "service_account_client_id", nullable=True),
        *versioned_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
    )
    op.create_index(op.f("ix_organisations_care_group_id"), "organisations", ["care_group_id"])
    op.create_table(
        "patients",
        *columns(sa.String(63), "id", "care_group_id"),
        *columns(sa.String(64), "bsn_hash"),
        *times("create_time", "update_time"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("care_group_id", "bsn_hash", name=op.f("uq_patients_care_group_id")),
    )
    op.create_index(op.f("ix_patients_care_group_id"), "patients", ["care_group_id"])
    create_request_records()
    op.create_table(
        "care_relationships",
        *columns(sa.String(63), "id", "patient_id", "organisation_id"),
        *columns(sa.String(32), "kind"),
        *times("start_time"),
        *times("end_time", nullable=True),
        *times("create_time"),
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
    op.create_index(
        "ix_care_relationships_patient_org",
        "care_relationships",
        ["patient_id", "organisation_id"],
    )
    op.create_table(
        "consents",
        *columns(sa.String(63), "id", "patient_id"),
        *columns(sa.String(32), "record_holder_type", nullable=True),
        *columns(sa.String(63), "record_holder_id", nullable=True),
        *columns(sa.String(32), "data_category"),
        *columns(sa.String(32), "requester_type", nullable=True),
        *columns(sa.String(63), "requester_id", nullable=True),
        *times("start_time"),
        *times("end_time", "withdraw_time", nullable=True),
        *columns(sa.String(200), "recorded_by"),
        *versioned_columns(),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_consents_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index(op.f("ix_consents_patient_id"), "consents", ["patient_id"])
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *columns(sa.String(63), "consent_id", "patient_id"),
        *columns(sa.String(16), "type"),
        *columns(sa.String(200), "actor"),
        *times("event_time"),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consents.id"], name=op.f("fk_consent_events_consent_id_consents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    op.create_index(op.f("ix_consent_events_patient_id"), "consent_events", ["patient_id"])
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
        make_append_only("access_log", truncate=True)
    else:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS access_log_no_update ON access_log")
        op.execute("DROP TRIGGER IF EXISTS access_log_no_truncate ON access_log")
        op.execute("DROP FUNCTION IF EXISTS access_log_append_only()")
    drop_tables(
        "consent_events",
        "consents",
        "care_relationships",
        "request_records",
        "patients",
        "organisations",
        "access_log_head",
        "access_log",
    )

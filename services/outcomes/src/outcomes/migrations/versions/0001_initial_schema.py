"""initial schema

Create Date: 2026-11-23 15:12:27.465848
"""

import sqlalchemy as sa
from alembic import op

import servicekit.db

revision: str = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "contracts",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("care_group_id", sa.String(length=63), nullable=False),
        sa.Column("insurer_id", sa.String(length=63), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("period_start", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("period_end", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("terms_json", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("create_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
        sa.UniqueConstraint("care_group_id", "request_id", name="uq_contracts_request"),
    )
    op.create_index(
        op.f("ix_contracts_care_group_id"), "contracts", ["care_group_id"], unique=False
    )
    op.create_index("ix_contracts_insurer", "contracts", ["insurer_id"], unique=False)
    op.create_table(
        "cost_records",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("contract_id", sa.String(length=63), nullable=False),
        sa.Column("period_start", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("period_end", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("benchmark_cost", sa.String(length=40), nullable=False),
        sa.Column("actual_cost", sa.String(length=40), nullable=False),
        sa.Column("insured_person_years", sa.String(length=40), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("create_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_records")),
    )
    op.create_index(
        "ix_cost_records_contract",
        "cost_records",
        ["contract_id", "period_start", "period_end"],
        unique=False,
    )
    op.create_table(
        "enrolments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("care_group_id", sa.String(length=63), nullable=False),
        sa.Column("patient_id", sa.String(length=128), nullable=False),
        sa.Column("programme", sa.String(length=8), nullable=False),
        sa.Column("practice_id", sa.String(length=63), nullable=False),
        sa.Column("practice_agb", sa.String(length=8), nullable=False),
        sa.Column("start_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("main_practitioner", sa.String(length=200), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("create_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolments")),
        sa.UniqueConstraint(
            "care_group_id", "patient_id", "programme", name="uq_enrolments_patient_programme"
        ),
    )
    op.create_index(
        "ix_enrolments_scope",
        "enrolments",
        ["care_group_id", "programme", "patient_id"],
        unique=False,
    )
    op.create_table(
        "indicator_definitions",
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("condition", sa.String(length=8), nullable=False),
        sa.Column("definition_json", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("create_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", "version", name=op.f("pk_indicator_definitions")),
    )
    op.create_table(
        "measurements",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("care_group_id", sa.String(length=63), nullable=False),
        sa.Column("patient_id", sa.String(length=128), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("measured_at", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("source_kind", sa.String(length=24), nullable=False),
        sa.Column("source_org", sa.String(length=63), nullable=False),
        sa.Column("source_record_id", sa.String(length=128), nullable=False),
        sa.Column("ingested_at", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurements")),
        sa.UniqueConstraint(
            "source_kind", "source_org", "source_record_id", name="uq_measurements_source_record"
        ),
    )
    op.create_index(
        "ix_measurements_patient_code",
        "measurements",
        ["care_group_id", "code", "patient_id", "measured_at"],
        unique=False,
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("care_group_id", sa.String(length=63), nullable=False),
        sa.Column("contract_id", sa.String(length=63), nullable=True),
        sa.Column("period_start", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("period_end", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("data_cutoff", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("inputs_json", sa.Text(), nullable=False),
        sa.Column("cells_json", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("cell_count", sa.Integer(), nullable=False),
        sa.Column("create_time", servicekit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    op.create_index(op.f("ix_reports_care_group_id"), "reports", ["care_group_id"], unique=False)
    op.create_index("ix_reports_contract", "reports", ["contract_id", "period_start"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reports_contract", table_name="reports")
    op.drop_index(op.f("ix_reports_care_group_id"), table_name="reports")
    op.drop_table("reports")
    op.drop_index("ix_measurements_patient_code", table_name="measurements")
    op.drop_table("measurements")
    op.drop_table("indicator_definitions")
    op.drop_index("ix_enrolments_scope", table_name="enrolments")
    op.drop_table("enrolments")
    op.drop_index("ix_cost_records_contract", table_name="cost_records")
    op.drop_table("cost_records")
    op.drop_index("ix_contracts_insurer", table_name="contracts")
    op.drop_index(op.f("ix_contracts_care_group_id"), table_name="contracts")
    op.drop_table("contracts")

"""initial schema

Create Date: 2026-11-23 15:12:27.465848
"""

import sqlalchemy as sa
from alembic import op

from servicekit.migration_steps import columns, drop_tables, serial, times, versioned_columns

revision: str = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "contracts",
        *columns(sa.String(63), "id", "care_group_id", "insurer_id"),
        *columns(sa.String(200), "display_name"),
        *times("period_start", "period_end"),
        *columns(sa.Text(), "terms_json"),
        *columns(sa.String(100), "request_id", nullable=True),
        *versioned_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
        sa.UniqueConstraint("care_group_id", "request_id", name="uq_contracts_request"),
    )
    op.create_index(op.f("ix_contracts_care_group_id"), "contracts", ["care_group_id"])
    op.create_index("ix_contracts_insurer", "contracts", ["insurer_id"])
    op.create_table(
        "cost_records",
        *columns(sa.String(63), "id", "contract_id"),
        *times("period_start", "period_end"),
        *columns(sa.String(40), "benchmark_cost", "actual_cost", "insured_person_years"),
        *columns(sa.String(200), "recorded_by"),
        *times("create_time"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_records")),
    )
    op.create_index(
        "ix_cost_records_contract", "cost_records", ["contract_id", "period_start", "period_end"]
    )
    op.create_table(
        "enrolments",
        serial(),
        *columns(sa.String(63), "care_group_id"),
        *columns(sa.String(128), "patient_id"),
        *columns(sa.String(8), "programme"),
        *columns(sa.String(63), "practice_id"),
        *columns(sa.String(8), "practice_agb"),
        *times("start_time"),
        *columns(sa.String(200), "main_practitioner"),
        *columns(sa.Integer(), "birth_year"),
        *columns(sa.String(1), "sex"),
        *times("create_time"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolments")),
        sa.UniqueConstraint(
            "care_group_id", "patient_id", "programme", name="uq_enrolments_patient_programme"
        ),
    )
    op.create_index(
        "ix_enrolments_scope", "enrolments", ["care_group_id", "programme", "patient_id"]
    )
    op.create_table(
        "indicator_definitions",
        *columns(sa.String(63), "code"),
        *columns(sa.Integer(), "version"),
        *columns(sa.String(300), "title"),
        *columns(sa.String(8), "condition"),
        *columns(sa.Text(), "definition_json"),
        *columns(sa.String(64), "content_hash"),
        *times("create_time"),
        sa.PrimaryKeyConstraint("code", "version", name=op.f("pk_indicator_definitions")),
    )
    op.create_table(
        "measurements",
        serial(),
        *columns(sa.String(63), "care_group_id"),
        *columns(sa.String(128), "patient_id"),
        *columns(sa.String(32), "code"),
        *columns(sa.Float(), "value"),
        *columns(sa.String(32), "unit"),
        *times("measured_at"),
        *columns(sa.String(24), "source_kind"),
        *columns(sa.String(63), "source_org"),
        *columns(sa.String(128), "source_record_id"),
        *times("ingested_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurements")),
        sa.UniqueConstraint(
            "source_kind", "source_org", "source_record_id", name="uq_measurements_source_record"
        ),
    )
    op.create_index(
        "ix_measurements_patient_code",
        "measurements",
        ["care_group_id", "code", "patient_id", "measured_at"],
    )
    op.create_table(
        "reports",
        *columns(sa.String(63), "id", "care_group_id"),
        *columns(sa.String(63), "contract_id", nullable=True),
        *times("period_start", "period_end", "data_cutoff"),
        *columns(sa.Text(), "inputs_json", "cells_json"),
        *columns(sa.String(64), "content_hash"),
        *columns(sa.Integer(), "cell_count"),
        *times("create_time"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    op.create_index(op.f("ix_reports_care_group_id"), "reports", ["care_group_id"])
    op.create_index("ix_reports_contract", "reports", ["contract_id", "period_start"])


def downgrade() -> None:
    drop_tables(
        "reports",
        "measurements",
        "indicator_definitions",
        "enrolments",
        "cost_records",
        "contracts",
    )

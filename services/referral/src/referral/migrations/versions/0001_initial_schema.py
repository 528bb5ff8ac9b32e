"""initial schema

Create Date: 2026-11-23 15:08:40.976566
"""

import sqlalchemy as sa
from alembic import op

from servicekit.migration_steps import (
    columns,
    create_request_records,
    drop_tables,
    times,
    versioned_columns,
)

revision: str = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "offers",
        *columns(sa.String(63), "id", "care_group_id", "owner_org_id"),
        *columns(sa.String(200), "display_name"),
        *columns(sa.Text(), "description"),
        *columns(sa.String(32), "category"),
        *columns(sa.String(16), "state"),
        *columns(sa.JSON(), "target_conditions", "service_area", "schedules", "languages"),
        *columns(sa.Text(), "application_process"),
        *columns(sa.JSON(), "contact", "cost_options"),
        *columns(sa.String(40), "recognition_level", nullable=True),
        *times("recognition_valid_until", nullable=True),
        *columns(sa.String(40), "capacity_status", nullable=True),
        *columns(sa.Integer(), "total_places", "places_taken", "waitlist_length"),
        *columns(sa.Text(), "capacity_notes"),
        *columns(sa.JSON(), "eligibility"),
        *columns(sa.Text(), "eligibility_description"),
        *versioned_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
    )
    op.create_index("ix_offers_care_group_state", "offers", ["care_group_id", "state"])
    op.create_index(op.f("ix_offers_owner_org_id"), "offers", ["owner_org_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        *columns(sa.String(32), "event_id", "event_type"),
        *columns(sa.String(63), "referral_id"),
        *columns(sa.String(128), "patient_id"),
        *columns(sa.String(63), "care_group_id", "referrer_org_id", "target_org_id"),
        *columns(sa.JSON(), "payload"),
        *times("create_time"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index("ix_outbox_care_group_id", "outbox", ["care_group_id", "id"])
    op.create_index(op.f("ix_outbox_referral_id"), "outbox", ["referral_id"])
    op.create_table(
        "outbox_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        *columns(sa.BigInteger(), "last_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_head")),
    )
    create_request_records("subject", 40)
    op.create_table(
        "referrals",
        *columns(sa.String(63), "id"),
        *columns(sa.String(128), "patient_id"),
        *columns(sa.String(63), "care_group_id", "offer_id", "referrer_org_id"),
        *columns(sa.String(200), "referrer_user"),
        *columns(sa.String(32), "referrer_role"),
        *columns(sa.String(63), "target_org_id"),
        *columns(sa.Text(), "reason"),
        *columns(sa.JSON(), "profile"),
        *columns(sa.String(20), "status"),
        *columns(sa.String(32), "business_status", nullable=True),
        *columns(sa.Text(), "status_reason"),
        *columns(sa.String(32), "enrolment"),
        *columns(sa.Integer(), "waitlist_position"),
        *columns(sa.Boolean(), "holds_place"),
        *columns(sa.JSON(), "eligibility"),
        *columns(sa.JSON(), "outcome", nullable=True),
        *columns(sa.String(200), "open_key", nullable=True),
        *versioned_columns(),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_referrals_offer_id_offers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("open_key", name=op.f("uq_referrals_open_key")),
    )
    op.create_index("ix_referrals_care_group_patient", "referrals", ["care_group_id", "patient_id"])
    op.create_index(op.f("ix_referrals_referrer_org_id"), "referrals", ["referrer_org_id"])
    op.create_index(op.f("ix_referrals_target_org_id"), "referrals", ["target_org_id"])
    op.create_index("ix_referrals_waitlist", "referrals", ["offer_id", "waitlist_position"])
    op.create_table(
        "referral_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *columns(sa.String(63), "referral_id"),
        *columns(sa.String(16), "kind"),
        *columns(sa.String(20), "from_status", nullable=True),
        *columns(sa.String(20), "to_status"),
        *columns(sa.String(32), "business_status", nullable=True),
        *columns(sa.Text(), "reason"),
        *columns(sa.String(200), "actor"),
        *columns(sa.String(63), "actor_org_id"),
        *times("change_time"),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_referral_history_referral_id_referrals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_history")),
    )
    op.create_index(op.f("ix_referral_history_referral_id"), "referral_history", ["referral_id"])
    # The outbox head exists from the start, so that drawing cursor ids only ever locks it.
    op.execute("INSERT INTO outbox_head (id, last_id) VALUES (1, 0)")


def downgrade() -> None:
    drop_tables(
        "referral_history", "referrals", "request_records", "outbox_head", "outbox", "offers"
    )

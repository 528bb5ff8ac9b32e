"""One open referral per patient, offer and referring organisation: ``referrals.open_key``
becomes ``<patient>/<offer>/<referrer organisation>`` (was ``<patient>/<offer>``) and is
widened to 256 characters to hold it.

Upgrade rewrites the key of every open referral (a closed one keeps NULL); the old keys
were unique per patient and offer, so the new ones are too. Downgrade restores the old
key and refuses, changing nothing, while two organisations' open referrals of a patient
for the same offer coexist (the old unique key cannot hold them): close all but one of
each such group (the count is named, no patient), then downgrade again.

Create Date: 2026-12-07 10:40:00
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"

REKEY_BY_REFERRER = (
    "UPDATE referrals SET open_key = patient_id || '/' || offer_id || '/' || referrer_org_id"
    " WHERE open_key IS NOT NULL"
)
REKEY_BY_PATIENT_AND_OFFER = (
    "UPDATE referrals SET open_key = patient_id || '/' || offer_id WHERE open_key IS NOT NULL"
)
COEXISTING = (
    "SELECT count(*) FROM (SELECT 1 FROM referrals WHERE open_key IS NOT NULL"
    " GROUP BY patient_id, offer_id HAVING count(*) > 1) AS pairs"
)


def upgrade() -> None:
    op.alter_column(
        "referrals",
        "open_key",
        type_=sa.String(length=256),
        existing_type=sa.String(length=200),
        existing_nullable=True,
    )
    op.execute(REKEY_BY_REFERRER)


def downgrade() -> None:
    bind = op.get_bind()
    coexisting = bind.execute(sa.text(COEXISTING)).scalar_one()
    if coexisting:
        raise RuntimeError(
            f"cannot downgrade referrals.open_key: {coexisting} patient/offer pair(s) have "
            "open referrals of more than one referring organisation, which one open referral "
            "per patient and offer cannot hold; close all but one referral of each pair "
            "(those whose patient and offer appear more than once among the referrals with "
            "an open_key), then downgrade again"
        )
    op.execute(REKEY_BY_PATIENT_AND_OFFER)
    op.alter_column(
        "referrals",
        "open_key",
        type_=sa.String(length=200),
        existing_type=sa.String(length=256),
        existing_nullable=True,
    )

"""access_log.key_id: the id of the HMAC key that chained the entry ('' for entries
written before the chain was keyed, which verification reports as legacy)

Create Date: 2026-12-10 06:00:00
"""

import sqlalchemy as sa

import servicekit.migration_steps

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    servicekit.migration_steps.add_column("access_log", "key_id", sa.String(length=32), "")


def downgrade() -> None:
    servicekit.migration_steps.drop_column("access_log", "key_id")

"""access_log.key_id: the id of the HMAC key that chained the entry ('' for entries
written before the chain was keyed, which verification reports as legacy)

Create Date: 2026-12-10 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    with op.batch_alter_table("access_log") as batch:
        batch.add_column(
            sa.Column("key_id", sa.String(length=32), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("access_log") as batch:
        batch.drop_column("key_id")

"""request_records.fingerprint: a hash of the create request without its request_id, so a
request_id reused with another request is refused instead of returning the first result
('' for records written before, which match no request)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-10 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("request_records") as batch:
        batch.add_column(
            sa.Column("fingerprint", sa.String(length=64), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("request_records") as batch:
        batch.drop_column("fingerprint")

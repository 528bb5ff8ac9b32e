"""request_records as servicekit.request_records declares them for every service: the
caller's column is ``caller`` (was ``subject``), a method name up to 60 characters

Create Date: 2026-12-07 10:05:00
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"


def upgrade() -> None:
    op.alter_column("request_records", "subject", new_column_name="caller")
    op.alter_column(
        "request_records", "method", type_=sa.String(length=60), existing_nullable=False
    )


def downgrade() -> None:
    op.alter_column(
        "request_records", "method", type_=sa.String(length=40), existing_nullable=False
    )
    op.alter_column("request_records", "caller", new_column_name="subject")

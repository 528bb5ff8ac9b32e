"""patients.facts_version: raised with every change to a patient's care relationships or
consents, so that Authorize can decide on cached facts and check them as it logs

Create Date: 2026-12-02 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.add_column(
            sa.Column("facts_version", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.drop_column("facts_version")

"""patients.facts_version: raised with every change to a patient's care relationships or
consents, so that Authorize can decide on cached facts and check them as it logs

Create Date: 2026-12-02 06:00:00
"""

import sqlalchemy as sa

import servicekit.migration_steps

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    servicekit.migration_steps.add_column("patients", "facts_version", sa.BigInteger(), "0")


def downgrade() -> None:
    servicekit.migration_steps.drop_column("patients", "facts_version")

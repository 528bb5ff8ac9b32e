"""offers.state_reason: the reason given with the last curation decision (RetireOffer's
``reason``, e.g. why the care group's admin rejected a proposed offer), for its owner

Create Date: 2026-12-07 12:15:00
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"


def upgrade() -> None:
    op.add_column("offers", sa.Column("state_reason", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("offers", "state_reason")

"""outbox: events are written without a shared lock and numbered after the commit.

A writer's event gets a negative ``outbox.id`` from a sequence (``-nextval('outbox_id_seq')``)
and no longer touches ``outbox_head``; a reader numbers committed events
(``ReferralRepository.number_events``: under ``outbox_head``'s row lock, the next cursors
from its ``last_id`` become their ids). Events written before keep their ids, which are the
cursors clients hold.

Only a sequence, a column default and an index are added, so the previous release runs on
this schema (a rollout or a rollback): its writers give a cursor from ``outbox_head`` under
the same row lock, and its readers read ids above a cursor, never a negative one. After a
rollback, events written by this release but not yet numbered are delivered once this
release numbers them again (or ``referral migrate`` downgrades, which numbers them).

Create Date: 2026-12-07 19:20:00
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"


def upgrade() -> None:
    op.execute("CREATE SEQUENCE outbox_id_seq AS bigint OWNED BY outbox.id")
    op.alter_column("outbox", "id", server_default=sa.text("-nextval('outbox_id_seq')"))
    op.create_index("ix_outbox_unnumbered", "outbox", ["id"], postgresql_where=sa.text("id < 0"))


def downgrade() -> None:
    """Numbers what is not numbered yet (no writer is left: the tables are locked), as the
    readers of this release would, so that the previous release delivers it."""
    op.execute("LOCK TABLE outbox_head, outbox IN EXCLUSIVE MODE")
    op.execute(
        "UPDATE outbox o SET id = h.last_id + n.n"
        " FROM outbox_head h, (SELECT id, row_number() OVER (ORDER BY id DESC) AS n"
        " FROM outbox WHERE id < 0) n WHERE h.id = 1 AND o.id = n.id"
    )
    op.execute(
        "UPDATE outbox_head SET last_id = GREATEST(last_id, (SELECT coalesce(max(id), 0)"
        " FROM outbox)) WHERE id = 1"
    )
    op.drop_index("ix_outbox_unnumbered", table_name="outbox")
    op.alter_column("outbox", "id", server_default=None)
    op.execute("DROP SEQUENCE outbox_id_seq")

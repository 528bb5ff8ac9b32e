"""identity's access log read straight from its table, as an insider with database access
would: the tests that hold a service to "one entry per access, describing the access that
happened" count what was written, of every data category, without asking identity."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, text

#: The columns a test may ask for (the statement is built from these names only).
COLUMNS = frozenset(
    {
        "id",
        "event",
        "patient_id",
        "organisation_id",
        "user_id",
        "responsible_user",
        "data_category",
        "action",
        "purpose",
        "decision",
        "basis",
        "reason",
    }
)


def last_entry_id(engine: Engine) -> int:
    """The id of the newest entry (0 for an empty log): a mark to read what follows."""
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM access_log")).scalar_one())


def entries_after(
    engine: Engine, after: int, columns: Sequence[str], patient: str = ""
) -> list[dict[str, Any]]:
    """The entries written after ``after``, oldest first, with ``columns``; only those about
    ``patient`` when one is named."""
    unknown = set(columns) - COLUMNS
    if unknown:
        raise ValueError(f"not access-log columns: {sorted(unknown)}")
    sql = (  # the column names are checked against COLUMNS above
        f"SELECT {', '.join(columns)} FROM access_log WHERE id > :after"  # noqa: S608
        " AND (:patient = '' OR patient_id = :patient) ORDER BY id"
    )
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {"after": after, "patient": patient}).mappings()
        return [dict(r) for r in rows]


class AccessLogReader:
    """The entries written since :meth:`mark`, each as a tuple of text in ``columns``' order
    (a NULL reads ``"None"``)."""

    def __init__(self, engine: Engine, columns: Sequence[str]) -> None:
        self.engine = engine
        self.columns = tuple(columns)
        self.since = 0

    def mark(self) -> None:
        self.since = last_entry_id(self.engine)

    def entries(self) -> list[tuple[str, ...]]:
        rows = entries_after(self.engine, self.since, self.columns)
        return [tuple(str(row[c]) for c in self.columns) for row in rows]


@contextmanager
def open_access_log(database_url: str, columns: Sequence[str]) -> Iterator[AccessLogReader]:
    """A reader of the access log in identity's database at ``database_url`` for the block
    (e.g. ``IdentityService.database_url``); its engine is disposed after it."""
    log = AccessLogReader(create_engine(database_url), columns)
    try:
        yield log
    finally:
        log.engine.dispose()

"""Alembic operations that more than one service's migrations perform, written once.

A migration calls them inside its ``upgrade``/``downgrade`` (they use Alembic's ``op`` of the
migration being run). What each one does is fixed: a migration that has been applied must
keep its effect, so a step changes only by adding a parameter whose default keeps it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from servicekit.db import UtcDateTime


def columns(
    type_: sa.types.TypeEngine[Any], *names: str, nullable: bool = False
) -> list[sa.Column[Any]]:
    """Columns of one type, NOT NULL unless ``nullable``, in the order named: a
    ``create_table`` lists each run of same-typed columns with one call."""
    return [sa.Column(name, type_, nullable=nullable) for name in names]


def times(*names: str, nullable: bool = False) -> list[sa.Column[Any]]:
    """:func:`columns` of timezone-aware UTC timestamps (servicekit.db.UtcDateTime)."""
    return columns(UtcDateTime(timezone=True), *names, nullable=nullable)


def serial(name: str = "id") -> sa.Column[Any]:
    """A generated 64-bit id (INTEGER, the row id, on SQLite)."""
    return sa.Column(
        name,
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def versioned_columns() -> list[sa.Column[Any]]:
    """The columns of servicekit.versioned.VersionedColumns, in the order the services'
    tables have them last: ``version``, ``create_time``, ``update_time``."""
    return [*columns(sa.Integer(), "version"), *times("create_time", "update_time")]


def create_request_records(caller_column: str = "caller", method_length: int = 60) -> None:
    """The table of servicekit.request_records as the services' first migrations created it
    (without ``fingerprint``, which :func:`add_fingerprint` adds later). Referral's first
    revision named the caller's column ``subject`` and allowed a 40-character method."""
    op.create_table(
        "request_records",
        sa.Column(caller_column, sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("method", sa.String(length=method_length), nullable=False),
        sa.Column("resource_name", sa.String(length=300), nullable=False),
        sa.Column("create_time", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(caller_column, "request_id", name=op.f("pk_request_records")),
    )


def add_column(table: str, column: str, type_: sa.types.TypeEngine[Any], default: str) -> None:
    """A NOT NULL column added to a table that may hold rows: they get ``default`` (the
    column's server default, kept for the rows written later by an older replica)."""
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column(column, type_, server_default=default, nullable=False))


def drop_column(table: str, column: str) -> None:
    """Undoes :func:`add_column`."""
    with op.batch_alter_table(table) as batch:
        batch.drop_column(column)


def add_fingerprint(table: str = "request_records") -> None:
    """``<table>.fingerprint``: the SHA-256 (hex) of a create request without its request_id
    (servicekit.idempotency); '' for the rows written before, which match no request, so a
    retry of such a request is refused (REQUEST_ID_REUSED) instead of replayed."""
    add_column(table, "fingerprint", sa.String(length=64), "")


def drop_fingerprint(table: str = "request_records") -> None:
    """Undoes :func:`add_fingerprint`."""
    drop_column(table, "fingerprint")


def make_append_only(table: str, *, truncate: bool = False) -> None:
    """On PostgreSQL, no role may change or remove a row of ``table``: the function
    ``<table>_append_only()`` raises ``insufficient_privilege`` from the trigger
    ``<table>_no_update`` (before every UPDATE or DELETE) and, with ``truncate``, from
    ``<table>_no_truncate`` (before TRUNCATE), which is then also revoked from PUBLIC."""
    statements = f"""
CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '{table} is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION {table}_append_only();
"""
    if truncate:
        statements += f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
  FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC;
"""
    op.execute(statements)


def drop_tables(*tables: str) -> None:
    """Drops the tables in the order named; a table's indexes go with it."""
    for table in tables:
        op.drop_table(table)

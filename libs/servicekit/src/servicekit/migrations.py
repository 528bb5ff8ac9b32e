"""Alembic, driven from code: every service keeps its migrations inside its package.

A service's ``migrations/env.py`` calls :func:`run_env` with its metadata; the URL comes
from the service's Settings (``<SVC>_DATABASE_URL``) or from the caller.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, create_engine, pool


def alembic_config(migrations_package: str, url: str) -> Config:
    location = resources.files(migrations_package)
    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["url"] = url
    return config


def upgrade(migrations_package: str, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_package, url), revision)


def pending_differences(engine: Engine, metadata: MetaData) -> list[Any]:
    """What autogenerate would write: empty when the database matches the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def run_env(metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py``."""
    from alembic import context

    config = context.config
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(context, connection, metadata)
        return
    engine = create_engine(str(url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(context, conn, metadata)
    engine.dispose()


def _run(context: Any, connection: Any, metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()

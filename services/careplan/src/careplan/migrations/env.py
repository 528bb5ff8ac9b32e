"""Alembic environment of the careplan service."""

from careplan.models import Base
from servicekit.migrations import run_env

run_env(Base.metadata)

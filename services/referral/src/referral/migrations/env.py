"""Alembic environment of the referral service."""

from referral.models import Base
from servicekit.migrations import run_env

run_env(Base.metadata)

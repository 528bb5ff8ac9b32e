"""Opens, commits and rolls back a session for the identity use cases."""

from __future__ import annotations

import itertools
import threading

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from identity.access_log import LogChain
from identity.decision_cache import DecisionCache
from identity.models import MAX_LOG_STRIPES
from identity.repository import IdentityRepository
from servicekit.uow import SqlAlchemyUnitOfWork


class LogStripes:
    """Which access-log hash chain a thread appends to. Threads take stripes in turn, so
    concurrent appends from one process rarely wait for each other's commit."""

    def __init__(self, count: int) -> None:
        if not 1 <= count <= MAX_LOG_STRIPES:
            raise ValueError(f"access-log stripes must be 1..{MAX_LOG_STRIPES}")
        self.count = count
        self._next = itertools.count()
        self._local = threading.local()

    def current(self) -> int:
        stripe: int | None = getattr(self._local, "stripe", None)
        if stripe is None:
            stripe = next(self._next) % self.count
            self._local.stripe = stripe
        return stripe


class UnitOfWork(SqlAlchemyUnitOfWork):
    """The repository over a session opened on first use. A warm Authorize reads everything
    from caches and writes one statement (see :meth:`first_row`), so it needs no session."""

    repo: IdentityRepository

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        stripes: LogStripes | None = None,
        *,
        driver_engine: Engine | None = None,
        log_chain: LogChain | None = None,
        cache: DecisionCache | None = None,
    ):
        super().__init__(session_factory, driver_engine=driver_engine)
        self._stripes = stripes
        self._log_chain = log_chain
        self._cache = cache

    def _start(self) -> None:
        # A unit of work given a driver engine is the autocommit one (see main.deps_for).
        self.repo = IdentityRepository(self, self._log_chain, self._driver_engine, self._cache)

    def commit(self) -> None:
        super().commit()
        # The entries this transaction appended are committed: the stripes' heads may never
        # be found below them again (LogChain.check), and the head journal publishes them.
        repo: IdentityRepository | None = getattr(self, "repo", None)
        if repo is not None and self._log_chain is not None:
            appended, repo.appended_in_transaction = repo.appended_in_transaction, []
            for entry in appended:
                self._log_chain.committed(entry.stripe, entry.sequence, entry.entry_hash)

    @property
    def log_stripe(self) -> int:
        """The access-log stripe this unit of work appends to."""
        return self._stripes.current() if self._stripes else 0

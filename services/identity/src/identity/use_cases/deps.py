"""The use cases' collaborators, in one place (built by identity.main.deps_for). The caches of
decision inputs live behind the repository (identity.decision_cache)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from identity.access_log_trust import AccessLogTrust
from identity.models import Organisation
from identity.unit_of_work import UnitOfWork


class Provisioner(Protocol):
    """Creates the Keycloak service-account client of a new organisation."""

    def provision(self, organisation: Organisation) -> str: ...


@dataclass
class Deps:
    uow: Callable[[], UnitOfWork]
    bsn_pepper: bytes
    provisioner: Provisioner | None = None
    # For use cases whose only write is one atomic statement (Authorize): no BEGIN/COMMIT
    # round trips (an AUTOCOMMIT engine). Defaults to ``uow`` (unit tests on fakes).
    autocommit_uow: Callable[[], UnitOfWork] | None = None

    def single_statement_uow(self) -> UnitOfWork:
        return (self.autocommit_uow or self.uow)()

    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    # The access log's chain keys and checkpoints (identity.access_log); without it, the
    # chain key derived from the BSN pepper and no checkpoints.
    access_log: AccessLogTrust | None = None

    # The client id of the referral service's account: the only caller whose referral
    # context (the Mitz referral exception) Authorize believes.
    referral_service_client_id: str = "svc-referral"

    def log_trust(self) -> AccessLogTrust:
        if self.access_log is None:
            self.access_log = AccessLogTrust.unconfigured(self.bsn_pepper)
        return self.access_log

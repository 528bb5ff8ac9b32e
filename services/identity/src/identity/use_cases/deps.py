"""The use cases' collaborators, in one place (built by identity.main.deps_for)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from identity.access_log import AccessLogTrust
from identity.models import (
    Organisation,
    OrgRef,
    PatientFacts,
)
from identity.unit_of_work import UnitOfWork

V = TypeVar("V")


class Provisioner(Protocol):
    """Creates the Keycloak service-account client of a new organisation."""

    def provision(self, organisation: Organisation) -> str: ...


class Directory:
    """Decision inputs cached in the process.

    An organisation's type and care group and a patient's care group are kept for the life
    of the process, because nothing can change them. A patient's care relationships and
    consents can change: they are kept with the facts version they were read at, every
    access-log append checks that version in the database in the same statement, and a
    stale entry is dropped and read again (see
    :func:`identity.use_cases.decisions.decide_and_append`).
    """

    MAX_ENTRIES = 200_000

    def __init__(self) -> None:
        self._orgs: dict[str, OrgRef] = {}
        self._patients: dict[str, str] = {}
        self._facts: dict[str, PatientFacts] = {}

    def organisation(self, uow: UnitOfWork, org_id: str) -> OrgRef | None:
        def load() -> OrgRef | None:
            org = uow.repo.organisation(org_id)
            return org.ref if org is not None else None

        return self._cached(self._orgs, org_id, load)

    def patient_care_group(self, uow: UnitOfWork, patient_id: str) -> str | None:
        def load() -> str | None:
            patient = uow.repo.patient(patient_id)
            return patient.care_group_id if patient is not None else None

        return self._cached(self._patients, patient_id, load)

    def patient_facts(self, uow: UnitOfWork, patient_id: str) -> PatientFacts | None:
        return self._cached(self._facts, patient_id, lambda: uow.repo.patient_facts(patient_id))

    def forget_facts(self, patient_id: str) -> None:
        self._facts.pop(patient_id, None)

    def _cached(self, store: dict[str, V], key: str, load: Callable[[], V | None]) -> V | None:
        """Found values are kept; a miss is asked again next time (it may exist by then)."""
        value = store.get(key)
        if value is None:
            value = load()
            if value is not None:
                if len(store) >= self.MAX_ENTRIES:
                    store.clear()
                store[key] = value
        return value


@dataclass
class Deps:
    uow: Callable[[], UnitOfWork]
    bsn_pepper: bytes
    provisioner: Provisioner | None = None
    directory: Directory = field(default_factory=Directory)
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

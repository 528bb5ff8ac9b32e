"""Fakes for unit tests: an identity client with a fixed decision table, and a clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from outcomes import errors
from outcomes.clients import Decision
from servicekit.auth import Principal


@dataclass
class FakeIdentityClient:
    """Permits every patient in ``permitted``; denies the others with ``reason``; patients
    in ``unknown`` do not exist. ``holders`` (patient -> organisations) limits, when set for
    a patient, the record holders whose records of that patient are permitted."""

    permitted: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    reason: str = "NO_CARE_RELATIONSHIP"
    holders: dict[str, set[str]] = field(default_factory=dict)
    no_updates: set[str] = field(default_factory=set)  # patients whose records may not change
    calls: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)
    asked_holders: list[str] = field(default_factory=list)
    unavailable: bool = False

    def authorize(
        self,
        subject: Principal,
        patient_id: str,
        action: str,
        purpose: str,
        record_holder_id: str = "",
    ) -> Decision:
        self.calls.append(("authorize", (patient_id,), action))
        self.asked_holders.append(record_holder_id)
        if self.unavailable:
            raise errors.IdentityUnavailable("identity down")
        if patient_id in self.unknown:
            # As servicekit.authorization answers it: like a patient without a relationship.
            return Decision(False, "NO_CARE_RELATIONSHIP")
        allowed = self.holders.get(patient_id)
        holder = record_holder_id or subject.organisation.removeprefix("organisations/")
        permitted = patient_id in self.permitted and (allowed is None or holder in allowed)
        if action == "update" and patient_id in self.no_updates:
            return Decision(False, "NO_CARE_RELATIONSHIP")
        return Decision(permitted, "CARE_RELATIONSHIP" if permitted else self.reason)

    def batch_authorize(
        self, subject: Principal, patient_ids: Sequence[str], action: str, purpose: str
    ) -> dict[str, Decision]:
        self.calls.append(("batch", tuple(patient_ids), action))
        if self.unavailable:
            raise errors.IdentityUnavailable("identity down")
        return {
            p: Decision(True, "CARE_RELATIONSHIP")
            if p in self.permitted
            else Decision(False, "NO_CARE_RELATIONSHIP" if p in self.unknown else self.reason)
            for p in dict.fromkeys(patient_ids)
        }


class FixedClock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


def sqlite_deps(
    path: str, identity: FakeIdentityClient, clock: FixedClock, chunk: int = 50
) -> object:
    """Use-case dependencies over a migrated SQLite file (the local-run database) and the
    fake identity client: unit tests exercise the use cases without a server."""
    from outcomes import service
    from outcomes.unit_of_work import UnitOfWork
    from servicekit.db import make_engine, make_session_factory
    from servicekit.migrations import upgrade

    url = f"sqlite:///{path}"
    upgrade("outcomes.migrations", url)
    sessions = make_session_factory(make_engine(url))
    deps = service.Deps(
        uow=lambda: UnitOfWork(sessions), identity=identity, clock=clock, ingest_chunk_rows=chunk
    )
    service.load_definitions(deps)
    return deps


def enrolled(deps: object, patient_ids: Sequence[str], now: dt.datetime) -> None:
    """Enrols the patients in DM2 at gp-de-linde (cg-zuidoost), as the ingest tests need."""
    from outcomes import patients, service
    from outcomes.models import Programme, Sex

    assert isinstance(deps, service.Deps)
    with deps.uow() as uow:
        for p in patient_ids:
            patients.store_enrolment(
                uow,
                "cg-zuidoost",
                patients.EnrolmentInput(
                    p,
                    Programme.DM2,
                    "gp-de-linde",
                    "01012345",
                    dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                    "",
                    1960,
                    Sex.FEMALE,
                ),
                now,
            )
        uow.commit()

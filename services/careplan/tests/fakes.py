"""Fakes for unit tests: an in-memory unit of work, a scripted stream, and testkit's one fake
of identity (re-exported)."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from careplan.clients import ReferralEvent
from careplan.deps import Deps
from careplan.models import (
    AppliedEvent,
    CarePlanRevisionRow,
    CarePlanRow,
    EventCursor,
    PlanView,
    RequestRecord,
    view_from_document,
)
from testkit.fakes import FakeIdentity, FakeRequestRecords, fake_principal

__all__ = ["FakeIdentity", "Store", "fake_deps"]

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


@dataclass
class Store:
    plans: dict[str, CarePlanRow] = field(default_factory=dict)
    revisions: dict[tuple[str, int], CarePlanRevisionRow] = field(default_factory=dict)
    requests: dict[tuple[str, str], RequestRecord] = field(default_factory=dict)
    cursors: dict[str, EventCursor] = field(default_factory=dict)
    applied: dict[str, AppliedEvent] = field(default_factory=dict)
    commits: int = 0


class FakeRepository(FakeRequestRecords[RequestRecord]):
    """The repository's interface over dicts; writes become visible on commit only."""

    request_record_row = RequestRecord

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: list[object] = []
        self.updates: list[tuple[str, dict[str, Any]]] = []

    def add(self, obj: object) -> None:
        self.pending.append(obj)

    def current_plan(self, patient_id: str) -> PlanView | None:
        row = self.store.plans.get(patient_id)
        return view_from_document(copy.deepcopy(row.document)) if row is not None else None

    def plan_for_update(self, patient_id: str) -> PlanView | None:
        return self.current_plan(patient_id)

    def compare_and_set(
        self, patient_id: str, expected_version: int, values: dict[str, Any]
    ) -> bool:
        row = self.store.plans.get(patient_id)
        if row is None or row.version != expected_version:
            return False
        self.updates.append((patient_id, values))
        return True

    def revision(self, patient_id: str, version: int) -> CarePlanRevisionRow | None:
        return self.store.revisions.get((patient_id, version))

    def revisions(self, patient_id: str, after: int, limit: int) -> list[CarePlanRevisionRow]:
        rows = sorted(
            (r for (p, v), r in self.store.revisions.items() if p == patient_id and v > after),
            key=lambda r: r.version,
        )
        return rows[:limit]

    def request_record(self, caller: str, request_id: str) -> RequestRecord | None:
        return self.store.requests.get((caller, request_id))

    def keep_request_record(self, record: RequestRecord) -> None:
        self.add(record)

    def cursor(self, consumer: str) -> int:
        row = self.store.cursors.get(consumer)
        return row.position if row is not None else 0

    def lock_cursor(self, consumer: str) -> int:
        return self.cursor(consumer)

    def advance_cursor(self, consumer: str, position: int, now: dt.datetime) -> None:
        self.pending.append(EventCursor(consumer=consumer, position=position, update_time=now))

    def applied_event(self, event_id: str) -> AppliedEvent | None:
        return self.store.applied.get(event_id)


class FakeUnitOfWork:
    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> FakeUnitOfWork:
        self.repo = FakeRepository(self.store)
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def commit(self) -> None:
        for obj in self.repo.pending:
            if isinstance(obj, CarePlanRow):
                self.store.plans[obj.patient_id] = obj
            elif isinstance(obj, CarePlanRevisionRow):
                key = (obj.patient_id, obj.version)
                assert key not in self.store.revisions, "a revision is written once"
                self.store.revisions[key] = obj
            elif isinstance(obj, RequestRecord):
                self.store.requests[(obj.caller, obj.request_id)] = obj
            elif isinstance(obj, EventCursor):
                self.store.cursors[obj.consumer] = obj
            elif isinstance(obj, AppliedEvent):
                self.store.applied[obj.event_id] = obj
        for patient_id, values in self.repo.updates:
            row = self.store.plans[patient_id]
            for name, new_value in values.items():
                setattr(row, name, new_value)
        self.store.commits += 1
        self.repo.pending, self.repo.updates = [], []

    def rollback(self) -> None:
        self.repo.pending, self.repo.updates = [], []


@dataclass
class FakeCoordinators:
    """The coordinating practice of every patient is ``default`` unless told otherwise."""

    default: str | None = "gp-de-linde"
    by_patient: dict[str, str | None] = field(default_factory=dict)

    def coordinating_practices(self, credentials: object, patient_id: str) -> frozenset[str]:
        found = self.by_patient.get(patient_id, self.default)
        return frozenset({found} if found else ())


class Clock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


def fake_deps(store: Store | None = None, identity: FakeIdentity | None = None) -> Deps:
    store = store or Store()
    counter = itertools.count(1)
    deps = Deps(
        uow=lambda: FakeUnitOfWork(store),  # type: ignore[arg-type, return-value]
        identity=identity or FakeIdentity(),
        coordinators=FakeCoordinators(),
        clock=Clock(),
        new_id=lambda: f"id-{next(counter)}",
    )
    deps.store = store  # type: ignore[attr-defined]
    return deps


REFERRAL = "patients/p-0001/referrals/r1"


def referral_event(
    cursor: int,
    status: str,
    *,
    referral: str = REFERRAL,
    feedback: str = "",
    event_id: str = "",
    event_time: dt.datetime | None = None,
    target_organisation: str = "",
) -> ReferralEvent:
    """Referral's event of patient p-0001's ``referral`` reaching ``status`` (event id
    ``e-<cursor>`` unless given), with no business status or enrolment."""
    return ReferralEvent(
        cursor,
        event_id or f"e-{cursor}",
        referral,
        "p-0001",
        status,
        "",
        "",
        feedback,
        event_time,
        target_organisation,
    )


@dataclass
class FakeReferralEvents:
    """A scripted WatchReferralEvents: serves the events after the cursor; may break after
    ``break_after`` events of one watch."""

    events: list[ReferralEvent]
    break_after: int | None = None
    watched_from: list[int] = field(default_factory=list)
    closed: int = 0

    def watch(self, after_cursor: int) -> Iterator[ReferralEvent]:
        self.watched_from.append(after_cursor)
        served = 0
        for event in self.events:
            if event.cursor <= after_cursor:
                continue
            if self.break_after is not None and served >= self.break_after:
                raise ConnectionError("stream broke")
            served += 1
            yield event

    def close(self) -> None:
        self.closed += 1


principal = fake_principal


GP = principal("dr.jansen", roles={"gp"}, organisation="gp-de-linde")
NURSE = principal("poh.bakker", roles={"practice-nurse"}, organisation="gp-de-linde")
SPECIALIST = principal("dr.smit", roles={"specialist"}, organisation="hosp-catharina")
COACH = principal("coach.degroot", roles={"provider"}, organisation="gli-beweegfit")
PATIENT = principal("pat.dewit", roles={"patient"}, patient="p-0001")
CARER = principal("carer-1", roles={"patient"}, patient="p-0002")
STRANGER = principal("someone", roles={"patient"}, patient="p-0009")

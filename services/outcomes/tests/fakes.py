"""Fakes for unit tests (identity's is testkit.fakes.FakeIdentity): a clock, and a unit of
work over an in-memory repository of enrolments and measurements (the queries the
enrolment and measurement use cases run; their SQL is tested on PostgreSQL in
tests/integration and tests/api)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self, cast

from outcomes.deps import Deps
from outcomes.models import Enrolment, MeasurementRevision, Programme, Sex
from outcomes.repository import (
    Correction,
    MeasurementRow,
    SourceKey,
    StoredMeasurement,
)
from outcomes.unit_of_work import UnitOfWork
from outcomes.use_cases import enrolments
from testkit.fakes import FakeIdentity


class FixedClock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


@dataclass
class Store:
    """What the fake repository holds: enrolments, measurements by source key (in the order
    of their ids) with their record ids, and the revisions corrections made."""

    enrolments: list[Enrolment] = field(default_factory=list)
    measurements: dict[SourceKey, StoredMeasurement] = field(default_factory=dict)
    revisions: list[MeasurementRevision] = field(default_factory=list)
    next_id: int = 1

    def copy(self) -> Store:
        return Store(
            list(self.enrolments), dict(self.measurements), list(self.revisions), self.next_id
        )


class FakeRepository:
    """The enrolment and measurement queries of outcomes.repository.OutcomesRepository, over
    a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _id(self) -> int:
        self.store.next_id += 1
        return self.store.next_id - 1

    def add(self, obj: object) -> None:
        assert isinstance(obj, Enrolment)
        obj.id = self._id()
        self.store.enrolments.append(obj)

    def enrolment(self, care_group_id: str, patient_id: str, programme: str) -> Enrolment | None:
        return next(
            (
                e
                for e in self.store.enrolments
                if (e.care_group_id, e.patient_id, e.programme)
                == (care_group_id, patient_id, programme)
            ),
            None,
        )

    def enrolments(
        self,
        care_group_id: str,
        patient_id: str,
        practices: Sequence[str],
        after: int | None,
        limit: int,
    ) -> list[Enrolment]:
        found = [
            e
            for e in self.store.enrolments
            if e.care_group_id == care_group_id
            and e.patient_id == patient_id
            and e.practice_id in practices
            and (after is None or e.id > after)
        ]
        return sorted(found, key=lambda e: e.id)[:limit]

    def enrolment_practices(self, care_group_id: str, patient_id: str) -> list[str]:
        return sorted(
            {
                e.practice_id
                for e in self.store.enrolments
                if e.care_group_id == care_group_id and e.patient_id == patient_id
            }
        )

    def enrolled(self, care_group_id: str, patient_ids: Iterable[str]) -> set[str]:
        wanted = set(patient_ids)
        return {
            e.patient_id
            for e in self.store.enrolments
            if e.care_group_id == care_group_id and e.patient_id in wanted
        }

    def insert_measurement_rows(
        self,
        care_group_id: str,
        holder_id: str,
        ingested_at: dt.datetime,
        rows: Sequence[MeasurementRow],
    ) -> dict[int, StoredMeasurement]:
        taken: dict[int, StoredMeasurement] = {}
        for n, (key, value, micros, record) in enumerate(rows):
            source = (key.source_kind, key.source_org, record)
            stored = self.store.measurements.get(source)
            if stored is not None:
                taken[n] = stored
                continue
            self.store.measurements[source] = StoredMeasurement(
                id=self._id(),
                care_group_id=care_group_id,
                patient_id=key.patient_id,
                code=key.code,
                value=value,
                unit=key.unit,
                measured_micros=micros,
                source_kind=key.source_kind,
                holder_id=holder_id,
                ingested_at=ingested_at,
            )
        return taken

    def lock_holder_measurements(
        self, care_group_id: str, holder_id: str, timeout_seconds: float
    ) -> bool:
        """One thread uses the fake store at a time: there is nothing to wait for."""
        return True

    def stored_sources(
        self, holder_id: str, keys: Iterable[SourceKey]
    ) -> dict[SourceKey, StoredMeasurement]:
        found = {k: self.store.measurements.get(k) for k in keys}
        return {k: m for k, m in found.items() if m is not None and m.holder_id == holder_id}

    def correct_measurements(self, corrections: Sequence[Correction], now: dt.datetime) -> None:
        for c in corrections:
            revision = c.revision(now)
            revision.id = self._id()
            self.store.revisions.append(revision)
            for source, stored in self.store.measurements.items():
                if stored.id == c.stored.id:
                    self.store.measurements[source] = dataclasses.replace(
                        stored, value=c.value, measured_micros=c.measured_micros, ingested_at=now
                    )

    def measurement_count(self) -> int:
        return len(self.store.measurements)

    def stored(self) -> list[tuple[SourceKey, StoredMeasurement]]:
        """(source key, row) of every measurement, in the order of their ids."""
        return sorted(self.store.measurements.items(), key=lambda item: item[1].id)


class FakeUnitOfWork:
    """A unit of work over the shared :class:`Store`: what it wrote is kept on commit and
    undone otherwise (a savepoint undoes what its block wrote when the block raises)."""

    def __init__(self, store: Store) -> None:
        self.shared = store
        self.repo = FakeRepository(store.copy())

    def __enter__(self) -> Self:
        self.repo = FakeRepository(self.shared.copy())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def commit(self) -> None:
        current = self.repo.store
        self.shared.enrolments[:] = current.enrolments
        self.shared.measurements.clear()
        self.shared.measurements.update(current.measurements)
        self.shared.revisions[:] = current.revisions
        self.shared.next_id = current.next_id

    def rollback(self) -> None:
        self.repo = FakeRepository(self.shared.copy())

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        before = self.repo.store.copy()
        try:
            yield
        except BaseException:
            self.repo.store = before
            raise


def fake_repository(uow: UnitOfWork) -> FakeRepository:
    """The fake repository of a unit of work that :func:`fake_deps` made."""
    return cast(FakeUnitOfWork, uow).repo


def fake_deps(
    identity: FakeIdentity, clock: Callable[[], dt.datetime], chunk: int = 50
) -> tuple[Deps, Store]:
    """Use-case dependencies over an in-memory store and the fake identity client."""
    store = Store()
    deps = Deps(
        uow=cast(Callable[[], UnitOfWork], lambda: FakeUnitOfWork(store)),
        identity=identity,
        clock=clock,
        ingest_chunk_rows=chunk,
    )
    return deps, store


def enrolled(deps: Deps, patient_ids: Sequence[str], now: dt.datetime) -> None:
    """Enrols the patients in DM2 at gp-de-linde (cg-zuidoost), as the ingest tests need."""
    with deps.uow() as uow:
        for p in patient_ids:
            enrolments.store_enrolment(
                uow,
                "cg-zuidoost",
                enrolments.EnrolmentInput(
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

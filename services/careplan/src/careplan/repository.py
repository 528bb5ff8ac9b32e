"""The only place the careplan service runs queries, and the owner of its plan cache."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update

from careplan.models import (
    AppliedEvent,
    CarePlanRevisionRow,
    CarePlanRow,
    EventCursor,
    PlanView,
    RequestRecord,
    view_from_document,
)
from servicekit.uow import Repository, SqlAlchemyUnitOfWork

# The plan's version, and its document only if the caller does not hold that version already.
_CURRENT_PLAN = (
    "SELECT version, CASE WHEN version = %s THEN NULL ELSE document END"
    " FROM care_plans WHERE patient_id = %s"
)


class PlanCache:
    """Decoded plans by patient, each at the version it was read at. A read asks the database
    for the plan's current version and gets the document only if that version differs, so
    an entry is never served once a newer version is committed (by any replica)."""

    MAX_ENTRIES = 20_000

    def __init__(self) -> None:
        self._views: dict[str, PlanView] = {}

    def get(self, patient_id: str) -> PlanView | None:
        return self._views.get(patient_id)

    def put(self, view: PlanView) -> None:
        if len(self._views) >= self.MAX_ENTRIES:
            self._views.clear()
        self._views[view.patient_id] = view

    def forget(self, patient_id: str) -> None:
        self._views.pop(patient_id, None)


class CarePlanRepository(Repository):
    """The only place this service runs queries (see :class:`servicekit.uow.Repository`,
    which also answers the request records)."""

    request_record_model = RequestRecord

    def __init__(self, uow: SqlAlchemyUnitOfWork, plans: PlanCache) -> None:
        super().__init__(uow)
        self._plans = plans

    # plans
    def current_plan(self, patient_id: str) -> PlanView | None:
        """The plan at its current version (None if the patient has none): one statement,
        which returns the document only when the cached copy is not of that version. The
        view returned is shared with other readers: do not change it."""
        cached = self._plans.get(patient_id)
        row = self._first_row(_CURRENT_PLAN, (cached.version if cached else 0, patient_id))
        if row is None:
            self._plans.forget(patient_id)
            return None
        version, document = row
        if document is None and cached is not None and cached.version == version:
            return cached
        view = view_from_document(document)
        self._plans.put(view)
        return view

    def plan_for_update(self, patient_id: str) -> PlanView | None:
        """The plan, its row locked until the transaction ends (None if there is none)."""
        row = self.session.scalars(
            select(CarePlanRow).where(CarePlanRow.patient_id == patient_id).with_for_update()
        ).first()
        return row.view() if row is not None else None

    def compare_and_set(
        self, patient_id: str, expected_version: int, values: dict[str, Any]
    ) -> bool:
        """Writes ``values`` only if the plan is still at ``expected_version``."""
        result = self.session.execute(
            update(CarePlanRow)
            .where(CarePlanRow.patient_id == patient_id, CarePlanRow.version == expected_version)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    # revisions
    def revision(self, patient_id: str, version: int) -> CarePlanRevisionRow | None:
        return self.session.get(CarePlanRevisionRow, (patient_id, version))

    def revisions(self, patient_id: str, after: int, limit: int) -> Sequence[CarePlanRevisionRow]:
        return self.session.scalars(
            select(CarePlanRevisionRow)
            .where(
                CarePlanRevisionRow.patient_id == patient_id, CarePlanRevisionRow.version > after
            )
            .order_by(CarePlanRevisionRow.version)
            .limit(limit)
        ).all()

    # the referral-event consumer
    def cursor(self, consumer: str) -> int:
        row = self.session.get(EventCursor, consumer)
        return row.position if row is not None else 0

    def lock_cursor(self, consumer: str) -> int:
        """The consumer's position, its row locked until the transaction ends (created at 0
        for a new consumer)."""
        row = self._cursor_row(consumer)
        return row.position

    def advance_cursor(self, consumer: str, position: int, now: dt.datetime) -> None:
        row = self._cursor_row(consumer)
        row.position, row.update_time = position, now
        self.session.flush()

    def _cursor_row(self, consumer: str) -> EventCursor:
        row = self.session.scalars(
            select(EventCursor).where(EventCursor.consumer == consumer).with_for_update()
        ).first()
        if row is None:
            row = EventCursor(consumer=consumer, position=0)
            self.session.add(row)
            self.session.flush()
        return row

    def applied_event(self, event_id: str) -> AppliedEvent | None:
        return self.session.get(AppliedEvent, event_id)

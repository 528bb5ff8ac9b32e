"""The only place the careplan service runs queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update

from careplan.models import (
    AppliedEvent,
    CarePlanRevisionRow,
    CarePlanRow,
    EventCursor,
    RequestRecord,
)
from servicekit.uow import Repository

# The plan's version, and its document only if the caller does not hold that version already.
_CURRENT_PLAN = (
    "SELECT version, CASE WHEN version = %s THEN NULL ELSE document END"
    " FROM care_plans WHERE patient_id = %s"
)


class CarePlanRepository(Repository):
    """The only place this service runs queries (see :class:`servicekit.uow.Repository`)."""

    # plans
    def plan(self, patient_id: str) -> CarePlanRow | None:
        return self.session.get(CarePlanRow, patient_id)

    def current_plan(
        self, patient_id: str, known_version: int
    ) -> tuple[int, dict[str, Any] | None] | None:
        """The plan's version and its document, the document None if it is ``known_version``;
        None if the patient has no plan."""
        if self.postgres:
            row = self._first_row(_CURRENT_PLAN, (known_version, patient_id))
            return (row[0], row[1]) if row is not None else None
        plan = self.plan(patient_id)
        if plan is None:
            return None
        return plan.version, None if plan.version == known_version else plan.document

    def plan_for_update(self, patient_id: str) -> CarePlanRow | None:
        """The plan, locked until commit (PostgreSQL; SQLite serialises writers anyway)."""
        return self.session.scalars(
            select(CarePlanRow).where(CarePlanRow.patient_id == patient_id).with_for_update()
        ).first()

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

    # idempotency
    def request_record(self, caller: str, request_id: str) -> RequestRecord | None:
        return self.session.get(RequestRecord, (caller, request_id))

    # the referral-event consumer
    def cursor(self, consumer: str) -> int:
        row = self.session.get(EventCursor, consumer)
        return row.position if row is not None else 0

    def lock_cursor(self, consumer: str) -> EventCursor:
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

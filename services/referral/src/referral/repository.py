"""The only place the referral service runs queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, false, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from referral.models import (
    HistoryEntry,
    Offer,
    OutboxEvent,
    OutboxHead,
    Referral,
    RequestRecord,
    Status,
)

OUTBOX_HEAD_ID = 1


class ReferralRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: object) -> None:
        self.session.add(obj)
        self.session.flush()

    # offers
    def offer(self, offer_id: str, *, for_update: bool = False) -> Offer | None:
        query = select(Offer).where(Offer.id == offer_id)
        if for_update:
            query = query.with_for_update()
        return self.session.scalars(query).first()

    def offers(
        self,
        care_group_id: str,
        *,
        states: Sequence[str] = (),
        owner_org_id: str = "",
        visible_owner_org_id: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> Sequence[Offer]:
        """Offers of a care group. ``visible_owner_org_id`` limits non-listed offers to that
        owner (``None``: no limit)."""
        query = select(Offer).where(Offer.care_group_id == care_group_id)
        if states:
            query = query.where(Offer.state.in_(states))
        if owner_org_id:
            query = query.where(Offer.owner_org_id == owner_org_id)
        if visible_owner_org_id is not None:
            query = query.where(
                or_(Offer.state == "listed", Offer.owner_org_id == visible_owner_org_id)
            )
        if after:
            query = query.where(Offer.id > after)
        return self.session.scalars(query.order_by(Offer.id).limit(limit)).all()

    def listed_offers(self, care_group_id: str, categories: Sequence[str]) -> Sequence[Offer]:
        query = select(Offer).where(Offer.care_group_id == care_group_id, Offer.state == "listed")
        if categories:
            query = query.where(Offer.category.in_(categories))
        return self.session.scalars(query).all()

    def offers_stamp(self, care_group_id: str) -> tuple[int, int]:
        """Changes whenever an offer of the care group is created or changed."""
        row = self.session.execute(
            select(func.count(Offer.id), func.coalesce(func.sum(Offer.version), 0)).where(
                Offer.care_group_id == care_group_id
            )
        ).one()
        return int(row[0]), int(row[1])

    # referrals
    def referral(self, referral_id: str, *, for_update: bool = False) -> Referral | None:
        query = select(Referral).where(Referral.id == referral_id)
        if for_update:
            query = query.with_for_update()
        return self.session.scalars(query).first()

    def open_referral(self, patient_id: str, offer_id: str) -> Referral | None:
        key = Referral.open_key_for(patient_id, offer_id)
        return self.session.scalars(select(Referral).where(Referral.open_key == key)).first()

    def referrals(
        self,
        care_group_id: str,
        *,
        patient_id: str = "",
        visible_to_org: str = "",
        visible_to_patient: str = "",
        status: str = "",
        after: str | None = None,
        limit: int = 50,
    ) -> Sequence[Referral]:
        query = select(Referral).where(Referral.care_group_id == care_group_id)
        if patient_id:
            query = query.where(Referral.patient_id == patient_id)
        if visible_to_org:
            query = query.where(
                or_(
                    Referral.referrer_org_id == visible_to_org,
                    Referral.target_org_id == visible_to_org,
                )
            )
        if visible_to_patient:
            query = query.where(Referral.patient_id == visible_to_patient)
        if status:
            query = query.where(Referral.status == status)
        if after:
            query = query.where(Referral.id > after)
        return self.session.scalars(query.order_by(Referral.id).limit(limit)).all()

    def first_waitlisted(self, offer_id: str) -> Referral | None:
        query = (
            select(Referral)
            .where(
                Referral.offer_id == offer_id,
                Referral.waitlist_position > 0,
                Referral.status.in_([Status.ACCEPTED.value, Status.ON_HOLD.value]),
            )
            .order_by(Referral.waitlist_position, Referral.create_time)
            .limit(1)
            # A waitlisted referral that another transaction is changing is passed over,
            # rather than waited for while this one holds the offer's lock (no deadlock).
            .with_for_update(skip_locked=True)
        )
        return self.session.scalars(query).first()

    def move_up_waitlist(self, offer_id: str, behind: int) -> None:
        self.session.execute(
            update(Referral)
            .where(Referral.offer_id == offer_id, Referral.waitlist_position > behind)
            .values(waitlist_position=Referral.waitlist_position - 1)
            .execution_options(synchronize_session="fetch")
        )

    def history(self, referral_id: str) -> Sequence[HistoryEntry]:
        return self.session.scalars(
            select(HistoryEntry)
            .where(HistoryEntry.referral_id == referral_id)
            .order_by(HistoryEntry.id)
        ).all()

    # outbox
    def next_outbox_ids(self, count: int) -> int:
        """Reserves ``count`` cursor values and returns the first. The UPDATE takes the
        head's row lock, held until commit, so ids are handed out in commit order."""
        last = self.session.execute(
            update(OutboxHead)
            .where(OutboxHead.id == OUTBOX_HEAD_ID)
            .values(last_id=OutboxHead.last_id + count)
            .returning(OutboxHead.last_id)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        return int(last) - count + 1

    def append_outbox_event(self, values: dict[str, Any]) -> None:
        """Draws the next cursor and inserts one event with it. On PostgreSQL this is one
        statement (a data-modifying CTE), so the head's row lock is held for one round trip
        less before the commit."""
        if self.session.get_bind().dialect.name != "postgresql":
            self.session.add(OutboxEvent(id=self.next_outbox_ids(1), **values))
            self.session.flush()
            return
        head = (
            update(OutboxHead)
            .where(OutboxHead.id == OUTBOX_HEAD_ID)
            .values(last_id=OutboxHead.last_id + 1)
            .returning(OutboxHead.last_id)
            .cte("head")
        )
        columns = list(values)
        payload = OutboxEvent.__table__.c.payload
        selected = [head.c.last_id] + [
            literal(values[c], type_=payload.type)
            if c == "payload"
            else literal(values[c], type_=OutboxEvent.__table__.c[c].type)
            for c in columns
        ]
        self.session.execute(insert(OutboxEvent).from_select(["id", *columns], select(*selected)))

    def events_after(
        self,
        cursor: int,
        limit: int,
        *,
        care_group_id: str | None,
        org_id: str = "",
        patient_id: str = "",
        only_patient: str = "",
    ) -> Sequence[OutboxEvent]:
        """Outbox events after ``cursor`` that the filter lets through (care group ``None``:
        every tenant, for platform services)."""
        query = select(OutboxEvent).where(OutboxEvent.id > cursor)
        conditions: list[ColumnElement[bool]] = []
        if care_group_id is not None:
            conditions.append(OutboxEvent.care_group_id == care_group_id)
            visibility: list[ColumnElement[bool]] = []
            if org_id:
                visibility.append(
                    or_(
                        OutboxEvent.referrer_org_id == org_id,
                        OutboxEvent.target_org_id == org_id,
                    )
                )
            if patient_id:
                visibility.append(OutboxEvent.patient_id == patient_id)
            conditions.append(or_(*visibility) if visibility else false())
        if only_patient:
            conditions.append(OutboxEvent.patient_id == only_patient)
        if conditions:
            query = query.where(and_(*conditions))
        return self.session.scalars(query.order_by(OutboxEvent.id).limit(limit)).all()

    # idempotency
    def request_record(self, subject: str, request_id: str) -> RequestRecord | None:
        return self.session.get(RequestRecord, (subject, request_id))

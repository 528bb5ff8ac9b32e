"""The only place the referral service runs queries."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, false, or_, select, tuple_, update
from sqlalchemy.sql.elements import ColumnElement

from referral.caches import Caches
from referral.models import (
    HistoryEntry,
    Offer,
    OutboxEvent,
    Referral,
    RequestRecord,
    Status,
)
from referral.ranking import Candidates, Menu
from servicekit.uow import Repository, SqlAlchemyUnitOfWork

OUTBOX_HEAD_ID = 1


@dataclass(frozen=True)
class ReferralFilter:
    """Which referrals of a care group a list reads: each condition that is not empty must
    hold (``visible_to_org``: the organisation refers or is the target)."""

    care_group_id: str
    patient_id: str = ""
    visible_to_org: str = ""
    visible_to_patient: str = ""
    status: str = ""


_REFERRAL_COLUMNS = [c.name for c in Referral.__table__.columns]
_JSON_COLUMNS = frozenset(
    c.name for c in Referral.__table__.columns if c.type.__class__.__name__ == "JSON"
)
_HISTORY_COLUMNS = [c.name for c in HistoryEntry.__table__.columns if c.name != "id"]
_RECORD_COLUMNS = [c.name for c in RequestRecord.__table__.columns]


@functools.cache
def _create_referral_sql(with_record: bool, event_columns: tuple[str, ...]) -> str:
    """One statement on PostgreSQL, and so one transaction: the referral, its first history
    entry, (optionally) the request record, and its outbox event (not numbered yet: see
    OutboxEvent), all only if the offer is still at the version the referral was checked
    against. Returns the history entry's id, or no row (having written nothing) when the
    offer has changed. Column names come from the models and every value is bound. It locks
    the offer row first (FOR KEY SHARE, which the referral's foreign key would otherwise
    take only at the end of the statement), as every other writer does; that lock is shared
    with other creates, which it waits for only on the same unique key (a duplicate, the
    same request_id)."""
    values = ", ".join("%s::json" if c in _JSON_COLUMNS else "%s" for c in _REFERRAL_COLUMNS)
    record = (
        f" record AS (INSERT INTO request_records ({', '.join(_RECORD_COLUMNS)})"  # noqa: S608
        f" SELECT {', '.join('%s' for _ in _RECORD_COLUMNS)} FROM created),"
        if with_record
        else ""
    )
    event_values = ", ".join("%s::json" if c == "payload" else "%s" for c in event_columns)
    return (
        "WITH fresh AS (SELECT 1 FROM offers"  # noqa: S608
        " WHERE id = %s AND version = %s FOR KEY SHARE),"
        f" created AS (INSERT INTO referrals ({', '.join(_REFERRAL_COLUMNS)})"
        f" SELECT {values} WHERE EXISTS (SELECT 1 FROM fresh) RETURNING id),"
        f" entry AS (INSERT INTO referral_history ({', '.join(_HISTORY_COLUMNS)})"
        f" SELECT {', '.join('%s' for _ in _HISTORY_COLUMNS)} FROM created RETURNING id),"
        f"{record}"
        f" event AS (INSERT INTO outbox ({', '.join(event_columns)})"
        f" SELECT {event_values} FROM created)"
        " SELECT id FROM entry"
    )


_OFFER = select(Offer).where(Offer.id == bindparam("offer_id"))
_OFFER_FOR_UPDATE = _OFFER.with_for_update()
# Built once: CreateReferral reads an offer's terms on every cache miss, and only these.
_OFFER_TERM_COLUMNS = (
    "care_group_id",
    "owner_org_id",
    "category",
    "state",
    "recognition_valid_until",
    "eligibility",
    "version",
)
_OFFER_TERMS_SQL = f"SELECT {', '.join(_OFFER_TERM_COLUMNS)} FROM offers WHERE id = %s"  # noqa: S608
_LISTED_OFFER_TERMS_SQL = (
    f"SELECT id, {', '.join(_OFFER_TERM_COLUMNS)} FROM offers"  # noqa: S608
    " WHERE care_group_id = %s AND state = 'listed'"
)
# What a writer gives; ``id`` is the sequence's (negative) until a reader numbers the event.
_OUTBOX_COLUMNS = [c.name for c in OutboxEvent.__table__.columns if c.name != "id"]


def _event_columns(values: dict[str, Any]) -> tuple[str, ...]:
    columns = tuple(c for c in _OUTBOX_COLUMNS if c in values)
    if len(columns) != len(values):
        raise ValueError(f"unknown outbox columns: {sorted(set(values) - set(columns))}")
    return columns


def _event_params(values: dict[str, Any], columns: tuple[str, ...]) -> list[Any]:
    return [json.dumps(values[c]) if c == "payload" else values[c] for c in columns]


@functools.cache
def _append_outbox_sql(columns: tuple[str, ...]) -> str:
    """Inserts one event, not numbered yet (see OutboxEvent). Column names come from the
    model."""
    values = ", ".join("%s::json" if c == "payload" else "%s" for c in columns)
    return f"INSERT INTO outbox ({', '.join(columns)}) VALUES ({values})"  # noqa: S608


_UNNUMBERED_SQL = "SELECT EXISTS (SELECT 1 FROM outbox WHERE id < 0)"
_LOCK_HEAD_SQL = "SELECT last_id FROM outbox_head WHERE id = %s FOR UPDATE"
# One statement (one snapshot), run holding the head's row lock: the next ``limit``
# committed events not numbered yet, in the sequence's order, get the cursors after the
# head's as their id, and the head moves past them.
_NUMBER_SQL = (
    "WITH ready AS (SELECT id, row_number() OVER (ORDER BY id DESC) AS n FROM outbox"
    " WHERE id < 0 ORDER BY id DESC LIMIT %s),"
    " head AS (UPDATE outbox_head SET last_id = last_id + (SELECT count(*) FROM ready)"
    " WHERE id = %s RETURNING last_id - (SELECT count(*) FROM ready) AS base),"
    " numbered AS (UPDATE outbox SET id = head.base + ready.n FROM ready, head"
    " WHERE outbox.id = ready.id RETURNING 1)"
    " SELECT count(*) FROM numbered"
)


_MENU_VERSION_SQL = "SELECT version FROM offer_menu_versions WHERE care_group_id = %s"
# The offers of a care group on the menu in the patient's area and categories.
_IDS_IN_AREA_SQL = (
    "SELECT array_agg(id) FROM offers WHERE care_group_id = %s AND state = 'listed'"
    " AND (recognition_valid_until IS NULL OR recognition_valid_until > %s)"
    " AND (%s::text[] IS NULL OR category = ANY(%s::text[]))"
    " AND ((cardinality(area_municipalities) = 0 AND isempty(area_postcodes))"
    " OR area_postcodes @> %s::int OR area_municipalities @> ARRAY[%s::text])"
)


class ReferralRepository(Repository):
    """The only place this service runs queries (see :class:`servicekit.uow.Repository`),
    and the owner of its caches."""

    request_record_model = RequestRecord

    def __init__(self, uow: SqlAlchemyUnitOfWork, caches: Caches) -> None:
        super().__init__(uow)
        self._caches = caches

    def flush(self) -> None:
        """Sends the changes made to loaded rows, so that the next statement sees them."""
        self.session.flush()

    def create_referral(
        self,
        referral: Referral,
        entry: HistoryEntry,
        record: RequestRecord | None,
        offer_version: int,
        event: dict[str, Any],
    ) -> bool:
        """Writes a new referral with its first history entry, the request record if any,
        and its outbox event, if the offer is still at ``offer_version``; False, writing
        nothing, if it is not. Sets ``entry.id``. A unique key raises an IntegrityError
        (SQLAlchemy's or, through the driver, psycopg's)."""
        columns = _event_columns(event)
        params: list[Any] = [referral.offer_id, offer_version]
        for column in _REFERRAL_COLUMNS:
            value = getattr(referral, column)
            params.append(json.dumps(value) if column in _JSON_COLUMNS else value)
        params.extend(getattr(entry, c) for c in _HISTORY_COLUMNS)
        if record is not None:
            params.extend(getattr(record, c) for c in _RECORD_COLUMNS)
        params.extend(_event_params(event, columns))
        row = self._first_row(_create_referral_sql(record is not None, columns), params)
        if row is None:
            return False
        entry.id = row[0]
        return True

    # offers
    def offer(self, offer_id: str, *, for_update: bool = False) -> Offer | None:
        query = _OFFER_FOR_UPDATE if for_update else _OFFER
        return self.session.scalars(query, {"offer_id": offer_id}).first()

    def offer_terms(self, offer_id: str) -> Offer | None:
        """The offer with only what a new referral needs (id, care group, owner, category,
        state, recognition end, eligibility rule, version): one driver statement into a
        transient Offer, attached to no session."""
        row = self._first_row(_OFFER_TERMS_SQL, (offer_id,))
        if row is None:
            return None
        return Offer(id=offer_id, **dict(zip(_OFFER_TERM_COLUMNS, row, strict=True)))

    def offer_for_referral(self, offer_id: str, care_group_id: str) -> Offer | None:
        """The offer's terms (:meth:`offer_terms`) from the process's cache: shared and
        detached, not to be changed. The first miss in a care group reads the terms of all
        its listed offers in one statement; later misses read the one offer. The referral's
        insert checks the version it carries (:meth:`create_referral`); after a refusal,
        :meth:`forget_offer` drops it."""
        cache = self._caches.offers
        return cache.get(offer_id) or cache.load(
            offer_id,
            care_group_id,
            lambda: self.offer_terms(offer_id),
            lambda: self._listed_offer_terms(care_group_id),
        )

    def _listed_offer_terms(self, care_group_id: str) -> list[Offer]:
        rows = (
            self.session.connection()
            .exec_driver_sql(_LISTED_OFFER_TERMS_SQL, (care_group_id,))
            .all()
        )
        return [
            Offer(id=row[0], **dict(zip(_OFFER_TERM_COLUMNS, row[1:], strict=True))) for row in rows
        ]

    def forget_offer(self, offer_id: str) -> None:
        self._caches.offers.forget(offer_id)

    def menu_in_area(
        self,
        care_group_id: str,
        *,
        postcode: str,
        municipality: str,
        categories: Sequence[str],
        now: dt.datetime,
    ) -> tuple[Menu, Candidates]:
        """The care group's menu card ready for ranking and its offers on the menu (listed,
        recognition not expired) in the patient's area and, if any are asked, categories.
        Both come from the process's cache while the care group's menu version is
        unchanged (one read by key); else PostgreSQL filters by area and category
        (migration 0003's columns) and the menu card is read again if it changed."""
        row = self._first_row(_MENU_VERSION_SQL, (care_group_id,))
        version = int(row[0]) if row is not None else 0
        cached = self._caches.menu.get(
            care_group_id, version, lambda: Menu(self.listed_offers(care_group_id, []))
        )
        cats = sorted(categories)
        number = int(postcode) if postcode else None
        return cached.menu, cached.candidates(
            (number, municipality, tuple(cats)),
            now,
            lambda: cached.menu.candidates(
                self._ids_in_area(care_group_id, number, municipality, cats, now)
            ),
        )

    def _ids_in_area(
        self,
        care_group_id: str,
        postcode: int | None,
        municipality: str,
        categories: list[str],
        now: dt.datetime,
    ) -> list[str]:
        cats = categories or None
        row = self._first_row(
            _IDS_IN_AREA_SQL, (care_group_id, now, cats, cats, postcode, municipality)
        )
        return list(row[0] or []) if row is not None else []

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

    # referrals
    def add_history(self, entry: HistoryEntry) -> None:
        self.session.add(entry)

    def referral(self, referral_id: str, *, for_update: bool = False) -> Referral | None:
        query = select(Referral).where(Referral.id == referral_id)
        if for_update:
            query = query.with_for_update()
        return self.session.scalars(query).first()

    def open_referral(
        self, patient_id: str, offer_id: str, referrer_org_id: str
    ) -> Referral | None:
        """The open referral of the patient for the offer made by ``referrer_org_id``."""
        key = Referral.open_key_for(patient_id, offer_id, referrer_org_id)
        return self.session.scalars(select(Referral).where(Referral.open_key == key)).first()

    def has_open_referral(self, patient_id: str, offer_id: str, referrer_org_id: str) -> bool:
        """Whether :meth:`open_referral` finds one: one driver statement by the unique
        ``open_key`` (outside a session: autocommit on a driver connection)."""
        key = Referral.open_key_for(patient_id, offer_id, referrer_org_id)
        return self._first_row("SELECT 1 FROM referrals WHERE open_key = %s", (key,)) is not None

    def referrals(
        self,
        where: ReferralFilter,
        *,
        before: tuple[dt.datetime, str] | None = None,
        limit: int = 50,
    ) -> Sequence[Referral]:
        """Newest first (create time, then id, descending), after ``before`` (the create time
        and id of the last one of the previous page)."""
        query = select(Referral).where(Referral.care_group_id == where.care_group_id)
        if where.patient_id:
            query = query.where(Referral.patient_id == where.patient_id)
        if where.visible_to_org:
            query = query.where(
                or_(
                    Referral.referrer_org_id == where.visible_to_org,
                    Referral.target_org_id == where.visible_to_org,
                )
            )
        if where.visible_to_patient:
            query = query.where(Referral.patient_id == where.visible_to_patient)
        if where.status:
            query = query.where(Referral.status == where.status)
        if before is not None:
            query = query.where(tuple_(Referral.create_time, Referral.id) < before)
        order = (Referral.create_time.desc(), Referral.id.desc())
        return self.session.scalars(query.order_by(*order).limit(limit)).all()

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
    def append_outbox_event(self, values: dict[str, Any]) -> None:
        """Inserts one event; a reader numbers it once it is committed
        (:meth:`number_events`)."""
        columns = _event_columns(values)
        self.session.connection().exec_driver_sql(
            _append_outbox_sql(columns), tuple(_event_params(values, columns))
        )

    def number_events(self, limit: int) -> bool:
        """Gives the next cursors to up to ``limit`` committed events not numbered yet, in the
        sequence's order, as their ids, holding the ``outbox_head`` row's lock until the
        caller commits this unit of work (so numberings follow one another and each sees the
        ones before). Returns whether every event committed when it looked has a cursor now.
        Takes no lock when there is nothing to number."""
        connection = self.session.connection()
        if not connection.exec_driver_sql(_UNNUMBERED_SQL).scalar_one():
            return True
        connection.exec_driver_sql(_LOCK_HEAD_SQL, (OUTBOX_HEAD_ID,)).one()
        # A new statement, so a new snapshot: it sees what the lock's last holder numbered.
        count = connection.exec_driver_sql(_NUMBER_SQL, (limit, OUTBOX_HEAD_ID)).scalar_one()
        return int(count) < limit

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
        """Numbered outbox events after ``cursor`` (at least 0), in cursor order, that the
        filter lets through (care group ``None``: every tenant, for platform services)."""
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

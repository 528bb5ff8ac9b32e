"""Fakes for unit tests: identity is testkit's FakeIdentity (it answers from a table and
records every question), and a unit of work over an in-memory store with the repository's interface (the
real SQL is covered by tests/integration on PostgreSQL)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from referral.deps import Deps
from referral.models import HistoryEntry, Offer, OutboxEvent, Referral, RequestRecord, Status
from referral.ranking import Candidates, Menu
from referral.repository import ReferralFilter
from referral.unit_of_work import UnitOfWork
from servicekit.auth import Principal
from testkit.fakes import FakeIdentity, FakeRequestRecords, fake_principal

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


Row = TypeVar("Row", Offer, Referral)


def _clone(row: Row) -> Row:
    """A new row with the same column values (JSON values copied)."""
    columns = sa_inspect(type(row)).column_attrs
    return type(row)(**{c.key: copy.deepcopy(getattr(row, c.key)) for c in columns})


def _integrity(what: str) -> IntegrityError:
    return IntegrityError(what, {}, Exception(f"duplicate key: {what}"))


@dataclass
class Store:
    """The committed rows."""

    offers: dict[str, Offer] = field(default_factory=dict)
    referrals: dict[str, Referral] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    outbox: list[OutboxEvent] = field(default_factory=list)
    requests: dict[tuple[str, str], RequestRecord] = field(default_factory=dict)
    commits: int = 0


class FakeRepository(FakeRequestRecords[RequestRecord]):
    """The repository's interface over a working copy of the store, with the database's
    unique keys (offer id, open referral per patient and offer, request id per subject).
    A row is copied when this unit of work first reads it, so changes stay here until
    commit; history entries, events and request records are never changed once written."""

    request_record_row = RequestRecord

    def __init__(self, store: Store) -> None:
        self.store = store
        self.start()

    def start(self) -> None:
        self.data = Store(
            dict(self.store.offers),
            dict(self.store.referrals),
            list(self.store.history),
            list(self.store.outbox),
            dict(self.store.requests),
        )
        self._mine: set[int] = set()

    def commit(self) -> None:
        self.store.offers = dict(self.data.offers)
        self.store.referrals = dict(self.data.referrals)
        self.store.history = list(self.data.history)
        self.store.outbox = list(self.data.outbox)
        self.store.requests = dict(self.data.requests)
        self.store.commits += 1
        self._mine = set()

    def _own(self, table: dict[str, Row], key: str) -> Row | None:
        row = table.get(key)
        if row is None or id(row) in self._mine:
            return row
        row = table[key] = _clone(row)
        self._mine.add(id(row))
        return row

    def flush(self) -> None:
        pass

    def add(self, obj: object) -> None:
        assert isinstance(obj, Offer)
        if obj.id in self.data.offers:
            raise _integrity("offers.id")
        self.data.offers[obj.id] = obj
        self._mine.add(id(obj))

    # offers
    def offer(self, offer_id: str, *, for_update: bool = False) -> Offer | None:
        return self._own(self.data.offers, offer_id)

    def offer_terms(self, offer_id: str) -> Offer | None:
        return self.data.offers.get(offer_id)

    def offer_for_referral(self, offer_id: str, care_group_id: str) -> Offer | None:
        return self.offer_terms(offer_id)

    def forget_offer(self, offer_id: str) -> None:
        pass

    def menu_in_area(
        self,
        care_group_id: str,
        *,
        postcode: str,
        municipality: str,
        categories: Sequence[str],
        now: dt.datetime,
    ) -> tuple[Menu, Candidates]:
        menu = Menu(self.listed_offers(care_group_id, []))
        number = int(postcode) if postcode else 0
        ids = [
            e.offer.id
            for e in menu.entries.values()
            if not e.offer.recognition_expired(now)
            and (not categories or e.offer.category in categories)
            and e.in_area(number, municipality)
        ]
        return menu, menu.candidates(ids)

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
        found = [
            o
            for o in self.data.offers.values()
            if o.care_group_id == care_group_id
            and (not states or o.state in states)
            and (not owner_org_id or o.owner_org_id == owner_org_id)
            and (
                visible_owner_org_id is None
                or o.state == "listed"
                or o.owner_org_id == visible_owner_org_id
            )
            and (not after or o.id > after)
        ]
        page = sorted(found, key=lambda o: o.id)[:limit]
        return [self._own(self.data.offers, o.id) or o for o in page]

    def listed_offers(self, care_group_id: str, categories: Sequence[str]) -> Sequence[Offer]:
        return [
            o
            for o in self.data.offers.values()
            if o.care_group_id == care_group_id
            and o.state == "listed"
            and (not categories or o.category in categories)
        ]

    # referrals
    def create_referral(
        self,
        referral: Referral,
        entry: HistoryEntry,
        record: RequestRecord | None,
        offer_version: int,
        event: dict[str, Any],
    ) -> bool:
        offer = self.data.offers.get(referral.offer_id)
        if offer is None or offer.version != offer_version:
            return False
        if referral.open_key and any(
            r.open_key == referral.open_key for r in self.data.referrals.values()
        ):
            raise _integrity("referrals.open_key")
        if record is not None and (record.caller, record.request_id) in self.data.requests:
            raise _integrity("request_records.pkey")
        self.data.referrals[referral.id] = referral
        self._mine.add(id(referral))
        self.add_history(entry)
        if record is not None:
            self.remember_request(record)
        self.append_outbox_event(event)
        return True

    def add_history(self, entry: HistoryEntry) -> None:
        entry.id = len(self.data.history) + 1
        self.data.history.append(entry)

    def remember_request(self, record: RequestRecord) -> None:
        if (record.caller, record.request_id) in self.data.requests:
            raise _integrity("request_records.pkey")
        self.data.requests[(record.caller, record.request_id)] = record

    def keep_request_record(self, record: RequestRecord) -> None:
        self.remember_request(record)

    def referral(self, referral_id: str, *, for_update: bool = False) -> Referral | None:
        return self._own(self.data.referrals, referral_id)

    def open_referral(
        self, patient_id: str, offer_id: str, referrer_org_id: str
    ) -> Referral | None:
        key = Referral.open_key_for(patient_id, offer_id, referrer_org_id)
        found = next((r for r in self.data.referrals.values() if r.open_key == key), None)
        return self._own(self.data.referrals, found.id) if found else None

    def has_open_referral(self, patient_id: str, offer_id: str, referrer_org_id: str) -> bool:
        return self.open_referral(patient_id, offer_id, referrer_org_id) is not None

    def referrals(
        self,
        where: ReferralFilter,
        *,
        before: tuple[dt.datetime, str] | None = None,
        limit: int = 50,
    ) -> Sequence[Referral]:
        org = where.visible_to_org
        found = [
            r
            for r in self.data.referrals.values()
            if r.care_group_id == where.care_group_id
            and (not where.patient_id or r.patient_id == where.patient_id)
            and (not org or org in (r.referrer_org_id, r.target_org_id))
            and (not where.visible_to_patient or r.patient_id == where.visible_to_patient)
            and (not where.status or r.status == where.status)
            and (before is None or (r.create_time, r.id) < before)
        ]
        page = sorted(found, key=lambda r: (r.create_time, r.id), reverse=True)[:limit]
        return [self._own(self.data.referrals, r.id) or r for r in page]

    def first_waitlisted(self, offer_id: str) -> Referral | None:
        waiting = [
            r
            for r in self.data.referrals.values()
            if r.offer_id == offer_id
            and r.waitlist_position > 0
            and r.status in (Status.ACCEPTED.value, Status.ON_HOLD.value)
        ]
        waiting.sort(key=lambda r: (r.waitlist_position, r.create_time))
        return self._own(self.data.referrals, waiting[0].id) if waiting else None

    def move_up_waitlist(self, offer_id: str, behind: int) -> None:
        for r in list(self.data.referrals.values()):
            if r.offer_id == offer_id and r.waitlist_position > behind:
                mine = self._own(self.data.referrals, r.id)
                assert mine is not None
                mine.waitlist_position -= 1

    def history(self, referral_id: str) -> Sequence[HistoryEntry]:
        return [h for h in self.data.history if h.referral_id == referral_id]

    # outbox
    def append_outbox_event(self, values: dict[str, Any]) -> None:
        self.data.outbox.append(OutboxEvent(id=len(self.data.outbox) + 1, **values))

    def number_events(self, limit: int) -> bool:
        """Events are numbered as they are written here: one writer at a time."""
        return True

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
        def visible(e: OutboxEvent) -> bool:
            if care_group_id is None:
                return True
            return e.care_group_id == care_group_id and (
                bool(org_id and org_id in (e.referrer_org_id, e.target_org_id))
                or bool(patient_id and e.patient_id == patient_id)
            )

        return [
            e
            for e in self.data.outbox
            if e.id > cursor and visible(e) and (not only_patient or e.patient_id == only_patient)
        ][:limit]

    # idempotency
    def request_record(self, caller: str, request_id: str) -> RequestRecord | None:
        return self.data.requests.get((caller, request_id))


class FakeUnitOfWork:
    """A working copy of the store for the ``with`` block: :meth:`commit` makes it the
    store, anything not committed is dropped (as a rolled-back transaction)."""

    def __init__(self, store: Store) -> None:
        self.repo = FakeRepository(store)

    def __enter__(self) -> FakeUnitOfWork:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def commit(self) -> None:
        self.repo.commit()

    def rollback(self) -> None:
        self.repo.start()


def memory_units(store: Store | None = None) -> Callable[[], UnitOfWork]:
    data = store if store is not None else Store()
    return cast("Callable[[], UnitOfWork]", lambda: FakeUnitOfWork(data))


@dataclass
class Clock:
    now: dt.datetime = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def fake_deps(identity: FakeIdentity | None = None, clock: Clock | None = None) -> Deps:
    return Deps(
        uow=memory_units(),
        identity=identity or FakeIdentity(),
        clock=clock or Clock(),
        sleep=lambda _s: None,
    )


def principal(
    user: str,
    org: str = "",
    roles: tuple[str, ...] = (),
    *,
    tenant: str = "cg-zuidoost",
    patient: str = "",
) -> Principal:
    return fake_principal(user, roles=roles, organisation=org, patient=patient, care_group=tenant)


GP = principal("dr.jansen", "gp-de-linde", ("gp",))
NURSE = principal("poh.bakker", "gp-de-linde", ("practice-nurse",))
OTHER_GP = principal("dr.devries", "gp-het-anker", ("gp",))
SPECIALIST = principal("dr.smit", "hosp-catharina", ("specialist",))
PROVIDER = principal("coach.degroot", "gli-beweegfit", ("provider",))
COACH = principal("coach.visser", "gm-eindhoven", ("sport-coach",))
OFFICER = principal("ambtenaar.mulder", "gm-eindhoven", ("municipality-officer",))
INSURER = principal("analist.peters", "ins-vgz", ("insurer-analyst",))
ADMIN = principal("admin.zuidoost", "cg-zuidoost", ("care-group-admin",))
PATIENT = principal("pat.dewit", "", ("patient",), patient="p-0001")
OTHER_PATIENT = principal("pat.yilmaz", "", ("patient",), patient="p-0002")
NOORD_GP = principal("dr.noord", "gp-noord", ("gp",), tenant="cg-noord")
# The practice's KIS with its own client-credentials token, acting for nobody.
KIS = Principal(
    subject="service-account-carenet-kis",
    client_id="carenet-kis",
    organisation="organisations/gp-de-linde",
    care_group="organisations/cg-zuidoost",
    roles=frozenset({"delegate"}),
)
CAREPLAN = Principal(
    subject="svc-careplan",
    client_id="svc-careplan",
    organisation="",
    care_group="",
    roles=frozenset({"service"}),
)

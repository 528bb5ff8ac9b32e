"""The only place the identity service runs queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from identity.models import (
    GENESIS_HASH,
    AccessLogEntry,
    AccessLogHead,
    CareRelationship,
    Consent,
    ConsentEvent,
    Organisation,
    Patient,
    RequestRecord,
)


class IdentityRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: object) -> None:
        self.session.add(obj)
        self.session.flush()

    # organisations
    def organisation(self, org_id: str) -> Organisation | None:
        return self.session.get(Organisation, org_id)

    def organisations(
        self, care_group_id: str, type_: str | None, after: str | None, limit: int
    ) -> Sequence[Organisation]:
        query = select(Organisation).where(Organisation.care_group_id == care_group_id)
        if type_:
            query = query.where(Organisation.type == type_)
        if after:
            query = query.where(Organisation.id > after)
        return self.session.scalars(query.order_by(Organisation.id).limit(limit)).all()

    # patients
    def patient(self, patient_id: str) -> Patient | None:
        return self.session.get(Patient, patient_id)

    def patient_by_bsn_hash(self, care_group_id: str, bsn_hash: str) -> Patient | None:
        return self.session.scalars(
            select(Patient).where(
                Patient.care_group_id == care_group_id, Patient.bsn_hash == bsn_hash
            )
        ).first()

    # care relationships
    def care_relationship(self, patient_id: str, rel_id: str) -> CareRelationship | None:
        rel = self.session.get(CareRelationship, rel_id)
        return rel if rel is not None and rel.patient_id == patient_id else None

    def care_relationships(
        self, patient_id: str, organisation_id: str | None = None, after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[CareRelationship]:
        query = select(CareRelationship).where(CareRelationship.patient_id == patient_id)
        if organisation_id is not None:
            query = query.where(CareRelationship.organisation_id == organisation_id)
        if after:
            query = query.where(CareRelationship.id > after)
        query = query.order_by(CareRelationship.id)
        if limit is not None:
            query = query.limit(limit)
        return self.session.scalars(query).all()

    # consents
    def consent(self, patient_id: str, consent_id: str) -> Consent | None:
        consent = self.session.get(Consent, consent_id)
        return consent if consent is not None and consent.patient_id == patient_id else None

    def consents(
        self, patient_id: str, data_category: str | None = None, after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[Consent]:
        query = select(Consent).where(Consent.patient_id == patient_id)
        if data_category is not None:
            query = query.where(Consent.data_category == data_category)
        if after:
            query = query.where(Consent.id > after)
        query = query.order_by(Consent.id)
        if limit is not None:
            query = query.limit(limit)
        return self.session.scalars(query).all()

    def consent_events(self, patient_id: str, after: int, limit: int) -> Sequence[ConsentEvent]:
        return self.session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.patient_id == patient_id, ConsentEvent.id > after)
            .order_by(ConsentEvent.id)
            .limit(limit)
        ).all()

    # access log
    def lock_log_head(self) -> AccessLogHead:
        """The chain's head, locked until commit so appends are strictly ordered."""
        head = self.session.scalars(
            select(AccessLogHead).where(AccessLogHead.id == 1).with_for_update()
        ).first()
        if head is None:
            head = AccessLogHead(id=1, last_sequence=0, last_hash=GENESIS_HASH)
            self.session.add(head)
            self.session.flush()
        return head

    def log_head(self) -> AccessLogHead | None:
        return self.session.get(AccessLogHead, 1)

    def advance_log_head(self, sequence: int, entry_hash: str) -> None:
        self.session.execute(
            update(AccessLogHead)
            .where(AccessLogHead.id == 1)
            .values(last_sequence=sequence, last_hash=entry_hash)
        )

    def access_log(
        self, *, patient_id: str | None, care_group_id: str | None, after: int, limit: int
    ) -> Sequence[AccessLogEntry]:
        query = select(AccessLogEntry).where(AccessLogEntry.sequence > after)
        if patient_id is not None:
            query = query.where(AccessLogEntry.patient_id == patient_id)
        if care_group_id is not None:
            query = query.where(AccessLogEntry.care_group_id == care_group_id)
        return self.session.scalars(query.order_by(AccessLogEntry.sequence).limit(limit)).all()

    def access_log_chunk(self, after: int, limit: int) -> Sequence[AccessLogEntry]:
        return self.session.scalars(
            select(AccessLogEntry)
            .where(AccessLogEntry.sequence > after)
            .order_by(AccessLogEntry.sequence)
            .limit(limit)
        ).all()

    # idempotency
    def request_record(self, caller: str, request_id: str) -> RequestRecord | None:
        return self.session.get(RequestRecord, (caller, request_id))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)

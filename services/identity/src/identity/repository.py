"""The only place the identity service runs queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import bindparam, select, update

from identity.models import (
    AccessLogEntry,
    AccessLogHead,
    AppendedEntry,
    CareRelationship,
    Consent,
    ConsentEvent,
    LogRecord,
    Organisation,
    Patient,
    PatientFacts,
    RelationshipWindow,
    RequestRecord,
    chain_hash,
)
from servicekit.uow import Repository

_LOG_COLUMNS = list(AccessLogEntry.HASHED_FIELDS)


def _pg_append_sql(guarded: bool) -> str:
    """One statement on PostgreSQL: advance the stripe's head (taking its row lock until
    commit), hash in the database, and insert the entry with the links the UPDATE returns.

    Guarded, it first checks that the patient's facts are still at the version the decision
    was taken on; if they are not, it changes nothing and returns no row. It runs through the
    driver directly (psycopg placeholders): this is the hottest statement of the platform.
    Column names come from the model and every value is bound.
    """
    fresh = (
        "fresh AS (SELECT 1 FROM patients WHERE id = %s AND facts_version = %s), "
        if guarded
        else ""
    )
    return (
        f"WITH {fresh}head AS ("  # noqa: S608
        " UPDATE access_log_head SET last_sequence = last_sequence + 1,"
        " previous_hash = last_hash,"
        " last_hash = encode(sha256(convert_to(last_hash || %s, 'UTF8')), 'hex')"
        f" WHERE id = %s{' AND EXISTS (SELECT 1 FROM fresh)' if guarded else ''}"
        " RETURNING last_sequence, previous_hash, last_hash)"
        " INSERT INTO access_log (stripe, sequence,"
        f" {', '.join(_LOG_COLUMNS)}, previous_hash, entry_hash)"
        f" SELECT %s, head.last_sequence, {', '.join('%s' for _ in _LOG_COLUMNS)},"
        " head.previous_hash, head.last_hash FROM head"
        " RETURNING id, sequence, previous_hash, entry_hash"
    )


_PG_APPEND_SQL = _pg_append_sql(guarded=False)
_PG_GUARDED_APPEND_SQL = _pg_append_sql(guarded=True)
_FACTS_VERSION = select(Patient.facts_version).where(Patient.id == bindparam("patient_id"))
_RELATIONSHIP_WINDOWS = select(
    CareRelationship.organisation_id, CareRelationship.start_time, CareRelationship.end_time
).where(CareRelationship.patient_id == bindparam("patient_id"))
_CONSENTS = select(Consent).where(Consent.patient_id == bindparam("patient_id"))


class IdentityRepository(Repository):
    """The only place this service runs queries (see :class:`servicekit.uow.Repository`)."""

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
        self,
        patient_id: str,
        organisation_id: str | None = None,
        after: str | None = None,
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

    # the decision inputs that can change
    def patient_facts(self, patient_id: str) -> PatientFacts | None:
        """The patient's care relationships and consents, and the facts version they are at.

        The version is read first: a change committed after it makes the facts newer than
        their version, which a guarded append then finds stale; never the other way round.
        """
        version = self.session.execute(_FACTS_VERSION, {"patient_id": patient_id}).scalar()
        if version is None:
            return None
        params = {"patient_id": patient_id}
        relationships = tuple(
            RelationshipWindow(org_id, start, end)
            for org_id, start, end in self.session.execute(_RELATIONSHIP_WINDOWS, params)
        )
        consents = tuple(c.terms for c in self.session.scalars(_CONSENTS, params))
        return PatientFacts(version, relationships, consents)

    def facts_changed(self, patient_id: str) -> None:
        """Raises the patient's facts version; call it in the transaction of the change.
        One atomic UPDATE, so concurrent changes each raise it."""
        self.session.execute(
            update(Patient)
            .where(Patient.id == patient_id)
            .values(facts_version=Patient.facts_version + 1)
            .execution_options(synchronize_session=False)
        )

    # consents
    def consent(self, patient_id: str, consent_id: str) -> Consent | None:
        consent = self.session.get(Consent, consent_id)
        return consent if consent is not None and consent.patient_id == patient_id else None

    def consents(
        self,
        patient_id: str,
        data_category: str | None = None,
        after: str | None = None,
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
    def append_log(
        self, record: LogRecord, stripe: int, facts_version: int | None = None
    ) -> AppendedEntry | None:
        """Links ``record`` to the end of ``stripe``'s hash chain and inserts it.

        With ``facts_version``, only if the patient's facts are still at that version;
        otherwise nothing is written and None is returned.

        On PostgreSQL this is one statement: the UPDATE of the stripe's head row takes the
        row lock that orders appends to that stripe, computes the new hash with sha256()
        over the old hash and the entry's canonical content, and the INSERT uses what it
        returns. Elsewhere (SQLite, which serialises writers) it takes several statements.
        """
        canonical = record.canonical()
        if self.postgres:
            values = (canonical, stripe, stripe, *(getattr(record, c) for c in _LOG_COLUMNS))
            if facts_version is None:
                row = self._first_row(_PG_APPEND_SQL, values)
            else:
                row = self._first_row(
                    _PG_GUARDED_APPEND_SQL, (record.patient_id, facts_version, *values)
                )
            if row is None:
                return None
            return AppendedEntry(id=row[0], stripe=stripe, sequence=row[1], entry_hash=row[3])
        if facts_version is not None:
            current = self.session.execute(
                _FACTS_VERSION, {"patient_id": record.patient_id}
            ).scalar()
            if current != facts_version:
                return None
        head = self.session.get(AccessLogHead, stripe, with_for_update=True)
        if head is None:
            raise RuntimeError("access_log_head is missing; run the migrations")
        entry = record.entry()
        entry.stripe = stripe
        entry.sequence = head.last_sequence + 1
        entry.previous_hash = head.last_hash
        entry.entry_hash = chain_hash(head.last_hash, canonical)
        head.previous_hash, head.last_hash = head.last_hash, entry.entry_hash
        head.last_sequence = entry.sequence
        self.session.add(entry)
        self.session.flush()
        return AppendedEntry(entry.id, stripe, entry.sequence, entry.entry_hash)

    def log_heads(self) -> Sequence[AccessLogHead]:
        return self.session.scalars(select(AccessLogHead).order_by(AccessLogHead.id)).all()

    def access_log(
        self, *, patient_id: str | None, care_group_id: str | None, after: int, limit: int
    ) -> Sequence[AccessLogEntry]:
        query = select(AccessLogEntry).where(AccessLogEntry.id > after)
        if patient_id is not None:
            query = query.where(AccessLogEntry.patient_id == patient_id)
        if care_group_id is not None:
            query = query.where(AccessLogEntry.care_group_id == care_group_id)
        return self.session.scalars(query.order_by(AccessLogEntry.id).limit(limit)).all()

    def access_log_chunk(self, stripe: int, after: int, limit: int) -> Sequence[AccessLogEntry]:
        return self.session.scalars(
            select(AccessLogEntry)
            .where(AccessLogEntry.stripe == stripe, AccessLogEntry.sequence > after)
            .order_by(AccessLogEntry.sequence)
            .limit(limit)
        ).all()

    # idempotency
    def request_record(self, caller: str, request_id: str) -> RequestRecord | None:
        return self.session.get(RequestRecord, (caller, request_id))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)

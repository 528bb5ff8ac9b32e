"""The only place the identity service runs queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, bindparam, or_, select, true, union, update
from sqlalchemy.exc import IntegrityError

from identity.access_log import LogChain
from identity.decision_cache import DecisionCache
from identity.minimisation import RelationshipScope
from identity.models import (
    AccessLogEntry,
    AccessLogHead,
    AppendedEntry,
    CareRelationship,
    Consent,
    ConsentEvent,
    LogRecord,
    Organisation,
    OrgRef,
    Patient,
    PatientFacts,
    Person,
    RelationshipKind,
    RelationshipWindow,
    RequestRecord,
)
from servicekit.uow import Repository, SqlAlchemyUnitOfWork

_LOG_COLUMNS = list(AccessLogEntry.HASHED_FIELDS)


def _pg_append_sql(guarded: bool) -> str:
    """One statement on PostgreSQL: move the stripe's head from the (sequence, hash) the
    link was computed on to the new entry (taking the head row's lock until commit), and
    insert the entry. The keyed link is computed in the process (the key never reaches the
    database), so the UPDATE holds only if the head is still where the process saw it; if
    another writer moved it, nothing is written and the statement returns a null id.

    Guarded, it also checks that the patient's facts are still at the version the decision
    was taken on, and returns whether they were. It runs through the driver directly
    (psycopg placeholders): this is the hottest statement of the platform. Column names
    come from the model and every value is bound.
    """
    fresh = (
        "fresh AS (SELECT 1 FROM patients WHERE id = %s AND facts_version = %s), "
        if guarded
        else ""
    )
    return (
        f"WITH {fresh}head AS ("  # noqa: S608
        " UPDATE access_log_head SET last_sequence = last_sequence + 1,"
        " previous_hash = last_hash, last_hash = %s"
        " WHERE id = %s AND last_sequence = %s AND last_hash = %s"
        f"{' AND EXISTS (SELECT 1 FROM fresh)' if guarded else ''}"
        " RETURNING last_sequence, previous_hash),"
        " entry AS (INSERT INTO access_log (stripe, sequence, key_id,"
        f" {', '.join(_LOG_COLUMNS)}, previous_hash, entry_hash)"
        f" SELECT %s, head.last_sequence, %s, {', '.join('%s' for _ in _LOG_COLUMNS)},"
        " head.previous_hash, %s FROM head RETURNING id)"
        f" SELECT (SELECT id FROM entry){', EXISTS (SELECT 1 FROM fresh)' if guarded else ''}"
    )


_PG_APPEND_SQL = _pg_append_sql(guarded=False)
_PG_GUARDED_APPEND_SQL = _pg_append_sql(guarded=True)
# Waits for a writer holding the head row, then reads where it is now.
_PG_HEAD_SQL = "SELECT last_sequence, last_hash FROM access_log_head WHERE id = %s FOR UPDATE"
_FACTS_VERSION = select(Patient.facts_version).where(Patient.id == bindparam("patient_id"))
_RELATIONSHIP_WINDOWS = select(
    CareRelationship.organisation_id, CareRelationship.start_time, CareRelationship.end_time
).where(CareRelationship.patient_id == bindparam("patient_id"))
_CONSENTS = select(Consent).where(Consent.patient_id == bindparam("patient_id"))


class _Moved:
    """Another writer moved the stripe's head: nothing was written."""


_MOVED = _Moved()


class _PgAppend:
    """One append on PostgreSQL: the keyed link from a known head, and the statement."""

    def __init__(
        self,
        chain: LogChain,
        record: LogRecord,
        canonical: str,
        stripe: int,
        facts_version: int | None,
    ) -> None:
        self.chain, self.record, self.canonical = chain, record, canonical
        self.stripe, self.facts_version = stripe, facts_version

    def attempt(
        self, run: Callable[[str, Sequence[object]], tuple[Any, ...] | None], head: tuple[int, str]
    ) -> AppendedEntry | _Moved | None:
        """The entry, None when the facts changed, or _MOVED when the head is elsewhere."""
        sequence, previous = head[0] + 1, head[1]
        link = self.chain.next_link(self.stripe, sequence, previous, self.canonical)
        values = (
            link,
            self.stripe,
            head[0],
            previous,
            self.stripe,
            self.chain.keyring.current_id,
            *(getattr(self.record, c) for c in _LOG_COLUMNS),
            link,
        )
        if self.facts_version is None:
            row = run(_PG_APPEND_SQL, values)
        else:
            row = run(_PG_GUARDED_APPEND_SQL, (self.record.patient_id, self.facts_version, *values))
        assert row is not None  # the statement's outer SELECT always returns one row
        if row[0] is not None:
            self.chain.appended(self.stripe, sequence, link)
            return AppendedEntry(id=row[0], stripe=self.stripe, sequence=sequence, entry_hash=link)
        if self.facts_version is not None and not row[1]:
            return None
        return _MOVED

    def read_head(
        self, run: Callable[[str, Sequence[object]], tuple[Any, ...] | None]
    ) -> tuple[int, str]:
        """Where the stripe's head is now, once its current writer (if any) committed; in a
        transaction its row stays locked until commit."""
        seen = self.chain.known(self.stripe)
        found = run(_PG_HEAD_SQL, (self.stripe,))
        if found is None:
            raise RuntimeError("access_log_head is missing; run the migrations")
        head = (int(found[0]), str(found[1]))
        self.chain.moved(self.stripe, *head, seen=seen)
        return head

    def locked(
        self, run: Callable[[str, Sequence[object]], tuple[Any, ...] | None]
    ) -> AppendedEntry | None:
        """Reads the head row FOR UPDATE (in a transaction, so the lock holds) and appends."""
        outcome = self.attempt(run, self.read_head(run))
        if isinstance(outcome, _Moved):
            raise RuntimeError("the access-log head moved under its row lock")
        return outcome


class IdentityRepository(Repository):
    """The only place this service runs queries (see :class:`servicekit.uow.Repository`)."""

    # request_record / add_request_record (servicekit.uow.Repository) over this table
    request_record_model = RequestRecord

    def __init__(
        self,
        uow: SqlAlchemyUnitOfWork,
        chain: LogChain | None = None,
        driver_engine: Engine | None = None,
        cache: DecisionCache | None = None,
    ) -> None:
        """``driver_engine`` is given to the autocommit unit of work's repository: the
        engine a locked append opens its own short transaction on. ``cache``: the process's
        decision inputs (identity.decision_cache); without one, nothing is kept."""
        super().__init__(uow)
        self._chain = chain
        self._driver_engine = driver_engine
        self._cache = cache or DecisionCache()
        # Entries appended in the unit of work's transaction: committed heads once it commits.
        self.appended_in_transaction: list[AppendedEntry] = []

    # the decision inputs, cached in the process (identity.decision_cache)
    def organisation_ref(self, org_id: str) -> OrgRef | None:
        def load() -> OrgRef | None:
            org = self.organisation(org_id)
            return org.ref if org is not None else None

        return self._cache.organisations.get(org_id, load)

    def patient_care_group(self, patient_id: str) -> str | None:
        def load() -> str | None:
            patient = self.patient(patient_id)
            return patient.care_group_id if patient is not None else None

        return self._cache.patient_care_groups.get(patient_id, load)

    def current_facts(self, patient_id: str) -> PatientFacts | None:
        """The patient's facts as cached, read on a miss; an append checks their version."""
        return self._cache.patient_facts.get(patient_id, lambda: self.patient_facts(patient_id))

    def forget_facts(self, patient_id: str) -> None:
        """Drops the cached facts (found stale by a guarded append)."""
        self._cache.patient_facts.forget(patient_id)

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

    def organisation_names(self, care_group_id: str, org_ids: Sequence[str]) -> dict[str, str]:
        """The display names of the care group's organisations among ``org_ids``."""
        if not org_ids:
            return {}
        rows = self.session.execute(
            select(Organisation.id, Organisation.display_name).where(
                Organisation.care_group_id == care_group_id, Organisation.id.in_(org_ids)
            )
        )
        return {str(org_id): str(name) for org_id, name in rows.tuples()}

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

    def care_relationships_in_scope(
        self, patient_id: str, scope: RelationshipScope, after: str | None, limit: int
    ) -> Sequence[CareRelationship]:
        """A page of the patient's relationships, only those ``scope`` lets the caller see."""
        query = select(CareRelationship).where(CareRelationship.patient_id == patient_id)
        if not scope.everything:
            seen = CareRelationship.organisation_id == scope.organisation_id
            if scope.with_coordinating:
                seen = or_(seen, CareRelationship.kind == RelationshipKind.COORDINATING.value)
            query = query.where(seen)
        if after:
            query = query.where(CareRelationship.id > after)
        return self.session.scalars(query.order_by(CareRelationship.id).limit(limit)).all()

    def open_care_relationship(
        self, patient_id: str, organisation_id: str | None, kind: str, now: dt.datetime
    ) -> CareRelationship | None:
        """The relationship of this kind between the patient and the organisation (None: any
        organisation) that has not ended by ``now`` (open, or ending later), if there is
        one; the first created."""
        same_org = (
            CareRelationship.organisation_id == organisation_id
            if organisation_id is not None
            else true()
        )
        return self.session.scalars(
            select(CareRelationship)
            .where(
                CareRelationship.patient_id == patient_id,
                same_org,
                CareRelationship.kind == kind,
                or_(CareRelationship.end_time.is_(None), CareRelationship.end_time > now),
            )
            .order_by(CareRelationship.create_time, CareRelationship.id)
            .limit(1)
        ).first()

    def add_care_relationship(self, rel: CareRelationship) -> bool:
        """Inserts ``rel`` unless the database already holds an open relationship of the same
        patient, organisation and kind (the partial unique index): then nothing is written
        (only a savepoint is rolled back) and False is returned."""
        try:
            with self.session.begin_nested():
                self.session.add(rel)
                self.session.flush()
        except IntegrityError:
            return False
        return True

    # the people directory
    def person(self, person_id: str) -> Person | None:
        return self.session.get(Person, person_id)

    def people(self) -> Sequence[Person]:
        return self.session.scalars(select(Person).order_by(Person.id)).all()

    def people_by_ids(self, person_ids: Sequence[str]) -> Sequence[Person]:
        if not person_ids:
            return []
        return self.session.scalars(select(Person).where(Person.id.in_(person_ids))).all()

    def users_in_patient_log(
        self, patient_id: str, care_group_id: str, user_ids: Sequence[str]
    ) -> set[str]:
        """Which of ``user_ids`` appear in the patient's access log (as user or responsible
        user) in the care group."""
        if not user_ids:
            return set()
        of_patient = (AccessLogEntry.patient_id == patient_id) & (
            AccessLogEntry.care_group_id == care_group_id
        )
        users = select(AccessLogEntry.user_id).where(
            of_patient, AccessLogEntry.user_id.in_(user_ids)
        )
        responsible = select(AccessLogEntry.responsible_user).where(
            of_patient, AccessLogEntry.responsible_user.in_(user_ids)
        )
        return set(self.session.scalars(union(users, responsible)).all())

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
        """Links ``record`` to the end of ``stripe``'s keyed chain and inserts it.

        With ``facts_version``, only if the patient's facts are still at that version;
        otherwise nothing is written and None is returned.

        On PostgreSQL this is one statement (see :func:`_pg_append_sql`) when the process
        knows where the stripe's head is, as it does after its first append to it (before
        that, it reads the head first). When another writer moved the head meanwhile, the
        head row is read again with its lock held and the append made under that lock: in
        the unit of work's transaction, or, for the autocommit unit of work, in a short
        transaction of its own.
        """
        chain = self._log_chain()
        canonical = record.canonical()
        if self._driver_engine is None:
            entry = self._append_log_pg(chain, record, canonical, stripe, facts_version)
            if entry is not None:
                self.appended_in_transaction.append(entry)
            return entry
        with chain.turn(stripe):
            return self._append_log_pg(chain, record, canonical, stripe, facts_version)

    def _append_log_pg(
        self,
        chain: LogChain,
        record: LogRecord,
        canonical: str,
        stripe: int,
        facts_version: int | None,
    ) -> AppendedEntry | None:
        append = _PgAppend(chain, record, canonical, stripe, facts_version)
        head = chain.head(stripe) or append.read_head(self._first_row)
        outcome = append.attempt(self._first_row, head)
        if not isinstance(outcome, _Moved):
            if outcome is not None and self._driver_engine is not None:
                # The autocommit unit of work: the entry is committed, so the stripe's
                # head may never be found below it again (LogChain.check).
                chain.committed(stripe, outcome.sequence, outcome.entry_hash)
            return outcome
        chain.forget(stripe)
        if self._driver_engine is None:
            return append.locked(self._first_row)
        with self._driver_engine.connect() as connection:

            def run(sql: str, params: Sequence[object]) -> tuple[Any, ...] | None:
                row = connection.exec_driver_sql(sql, tuple(params)).first()
                return tuple(row) if row is not None else None

            outcome = append.locked(run)
            connection.commit()
            if outcome is not None:
                chain.committed(stripe, outcome.sequence, outcome.entry_hash)
            return outcome

    def _log_chain(self) -> LogChain:
        if self._chain is None:
            raise RuntimeError("this unit of work has no access-log chain key")
        return self._chain

    def log_heads(self) -> Sequence[AccessLogHead]:
        return self.session.scalars(select(AccessLogHead).order_by(AccessLogHead.id)).all()

    def log_entry_hash(self, stripe: int, sequence: int) -> str | None:
        """The hash of the stripe's entry at ``sequence``, None when there is none."""
        return self.session.scalar(
            select(AccessLogEntry.entry_hash).where(
                (AccessLogEntry.stripe == stripe) & (AccessLogEntry.sequence == sequence)
            )
        )

    def log_heads_with_entries(self) -> list[tuple[AccessLogHead, AccessLogEntry | None]]:
        """Every stripe's head row with the entry it points at (if any), in one statement,
        so that both come from the same moment."""
        rows = self.session.execute(
            select(AccessLogHead, AccessLogEntry)
            .outerjoin(
                AccessLogEntry,
                (AccessLogHead.id == AccessLogEntry.stripe)
                & (AccessLogHead.last_sequence == AccessLogEntry.sequence),
            )
            .order_by(AccessLogHead.id)
        ).all()
        return [(head, entry) for head, entry in rows]

    def snapshot(self) -> None:
        """Makes the rest of this unit of work read one consistent snapshot (PostgreSQL's
        REPEATABLE READ); call it before the first query."""
        self.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})

    def access_log(
        self,
        *,
        patient_id: str | None,
        care_group_id: str | None,
        after: int,
        limit: int,
        emergency_only: bool = False,
        newest_first: bool = False,
    ) -> Sequence[AccessLogEntry]:
        """Entries in the log's order (ids) after ``after``; ``newest_first``: in the
        reverse order, below ``after``."""
        if newest_first:
            query = select(AccessLogEntry).where(AccessLogEntry.id < after)
        else:
            query = select(AccessLogEntry).where(AccessLogEntry.id > after)
        if emergency_only:
            query = query.where(AccessLogEntry.emergency.is_(True))
        if patient_id is not None:
            query = query.where(AccessLogEntry.patient_id == patient_id)
        if care_group_id is not None:
            query = query.where(AccessLogEntry.care_group_id == care_group_id)
        order = AccessLogEntry.id.desc() if newest_first else AccessLogEntry.id
        return self.session.scalars(query.order_by(order).limit(limit)).all()

    def access_log_chunk(self, stripe: int, after: int, limit: int) -> Sequence[AccessLogEntry]:
        return self.session.scalars(
            select(AccessLogEntry)
            .where(AccessLogEntry.stripe == stripe, AccessLogEntry.sequence > after)
            .order_by(AccessLogEntry.sequence)
            .limit(limit)
        ).all()

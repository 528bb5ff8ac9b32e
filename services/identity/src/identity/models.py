"""The identity data model, with its rules as methods."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.db import UtcDateTime, new_metadata, utcnow
from servicekit.request_records import RequestRecordColumns
from servicekit.versioned import VersionedColumns
from servicekit.views import view_of


class OrganisationType(enum.StrEnum):
    CARE_GROUP = "care-group"
    GP_PRACTICE = "gp-practice"
    HOSPITAL = "hospital"
    MUNICIPALITY = "municipality"
    LIFESTYLE_PROVIDER = "lifestyle-provider"
    INSURER = "insurer"


class DataCategory(enum.StrEnum):
    REFERRAL = "referral"
    CARE_PLAN = "care-plan"
    MEASUREMENTS = "measurements"
    PATIENT_RECORD = "patient-record"
    CONSENT = "consent"
    ACCESS_LOG = "access-log"


class Action(enum.StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"


class RelationshipKind(enum.StrEnum):
    COORDINATING = "coordinating"
    TREATING = "treating"
    REFERRED = "referred"
    SOCIAL_SUPPORT = "social-support"


class ConsentState(enum.StrEnum):
    ACTIVE = "active"
    NOT_YET_VALID = "not-yet-valid"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class OrgRef:
    """What authorization needs of an organisation; none of it can change after creation."""

    id: str
    type: str
    care_group_id: str


class Base(DeclarativeBase):
    metadata = new_metadata()


class Organisation(VersionedColumns, Base):
    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    care_group_id: Mapped[str] = mapped_column(String(63), index=True)
    agb_code: Mapped[str | None] = mapped_column(String(8))
    ura: Mapped[str | None] = mapped_column(String(8))
    uzovi: Mapped[str | None] = mapped_column(String(4))
    cbs_municipality_code: Mapped[str | None] = mapped_column(String(6))
    service_account_client_id: Mapped[str | None] = mapped_column(String(100))

    @property
    def ref(self) -> OrgRef:
        return OrgRef(self.id, self.type, self.care_group_id)


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("care_group_id", "bsn_hash"),)

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    care_group_id: Mapped[str] = mapped_column(String(63), index=True)
    # HMAC-SHA256 of the BSN under the service's pepper: the BSN itself is never stored.
    bsn_hash: Mapped[str] = mapped_column(String(64))
    # Raised in the same transaction as every change to the patient's care relationships or
    # consents, so that a decision taken on cached facts can be checked as it is logged.
    facts_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


@dataclass(frozen=True)
class RelationshipWindow:
    """What authorization needs of a care relationship."""

    organisation_id: str
    start_time: dt.datetime
    end_time: dt.datetime | None

    def active_at(self, moment: dt.datetime) -> bool:
        return self.start_time <= moment and (self.end_time is None or moment < self.end_time)


class CareRelationship(Base):
    """A care relationship. At most one open relationship (no end time) of one kind per
    patient and organisation: the partial unique index holds it even against concurrent
    creates (see identity.use_cases.relationships)."""

    __tablename__ = "care_relationships"
    __table_args__ = (
        Index("ix_care_relationships_patient_org", "patient_id", "organisation_id"),
        Index(
            "uq_care_relationships_open",
            "patient_id",
            "organisation_id",
            "kind",
            unique=True,
            postgresql_where=text("end_time IS NULL"),
        ),
        # One coordinating practice per patient (migration 0005).
        Index(
            "uq_care_relationships_one_coordinator",
            "patient_id",
            unique=True,
            postgresql_where=text("kind = 'coordinating' AND end_time IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(32))
    start_time: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    end_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    def active_at(self, moment: dt.datetime) -> bool:
        return self.window.active_at(moment)

    @property
    def window(self) -> RelationshipWindow:
        return RelationshipWindow(self.organisation_id, self.start_time, self.end_time)


class Consent(VersionedColumns, Base):
    """A consent choice (Mitz): record holder × data category × requester.

    Each side names a category of organisation or one organisation.
    """

    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    record_holder_type: Mapped[str | None] = mapped_column(String(32))
    record_holder_id: Mapped[str | None] = mapped_column(String(63))
    data_category: Mapped[str] = mapped_column(String(32))
    requester_type: Mapped[str | None] = mapped_column(String(32))
    requester_id: Mapped[str | None] = mapped_column(String(63))
    start_time: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    end_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    withdraw_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    recorded_by: Mapped[str] = mapped_column(String(200))

    @property
    def terms(self) -> ConsentTerms:
        return view_of(ConsentTerms, self)

    def state_at(self, moment: dt.datetime) -> ConsentState:
        return self.terms.state_at(moment)


@dataclass(frozen=True)
class ConsentTerms:
    """What authorization needs of a consent choice."""

    record_holder_type: str | None
    record_holder_id: str | None
    data_category: str
    requester_type: str | None
    requester_id: str | None
    start_time: dt.datetime
    end_time: dt.datetime | None
    withdraw_time: dt.datetime | None

    def state_at(self, moment: dt.datetime) -> ConsentState:
        if self.withdraw_time is not None and self.withdraw_time <= moment:
            return ConsentState.WITHDRAWN
        if moment < self.start_time:
            return ConsentState.NOT_YET_VALID
        if self.end_time is not None and moment >= self.end_time:
            return ConsentState.EXPIRED
        return ConsentState.ACTIVE

    def covers(
        self,
        *,
        record_holder: OrgRef,
        data_category: str,
        requester: OrgRef,
        moment: dt.datetime,
    ) -> bool:
        """Whether this choice, active at ``moment``, permits the requester to see the data."""
        return (
            self.state_at(moment) is ConsentState.ACTIVE
            and self.data_category == data_category
            and _selects(self.record_holder_type, self.record_holder_id, record_holder)
            and _selects(self.requester_type, self.requester_id, requester)
        )


@dataclass(frozen=True)
class PatientFacts:
    """The decision inputs of a patient that can change (care relationships and consents),
    as of ``version``: every change to them raises the patient's ``facts_version``."""

    version: int
    relationships: tuple[RelationshipWindow, ...]
    consents: tuple[ConsentTerms, ...]


def _selects(type_: str | None, org_id: str | None, org: OrgRef) -> bool:
    if org_id:
        return org_id == org.id
    return type_ == org.type


class ConsentEvent(Base):
    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"))
    patient_id: Mapped[str] = mapped_column(String(63), index=True)
    type: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    event_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AccessLogEntry(Base):
    """One NEN 7513 entry. Append-only: a trigger refuses UPDATE and DELETE.

    Entries form chains, one per stripe: each entry's ``entry_hash`` is an HMAC, under a key
    that is not in the database, over its position, the previous entry's hash and its
    content (:mod:`identity.access_log`). Stripes let concurrent appends proceed in
    parallel; ``id`` orders all entries.
    """

    __tablename__ = "access_log"
    __table_args__ = (
        UniqueConstraint("stripe", "sequence"),
        Index("ix_access_log_patient_id_id", "patient_id", "id"),
        Index("ix_access_log_care_group_id_id", "care_group_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    stripe: Mapped[int] = mapped_column(SmallInteger)
    sequence: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(40))
    event_time: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    patient_id: Mapped[str] = mapped_column(String(128))
    care_group_id: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[str] = mapped_column(String(200))
    responsible_user: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[str] = mapped_column(String(63))
    roles: Mapped[str] = mapped_column(String(300))
    data_category: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(8))
    basis: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(60))
    emergency: Mapped[bool] = mapped_column(Boolean)
    emergency_reason: Mapped[str] = mapped_column(Text)
    access_point: Mapped[str] = mapped_column(String(200))
    # The HMAC key that chained this entry (see identity.access_log); '' for an entry written
    # before the chain was keyed, whose entry_hash is the plain chain_hash.
    key_id: Mapped[str] = mapped_column(String(32), server_default="")
    previous_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))

    # The chain links entries through previous_hash; VerifyAccessLog checks each stripe's
    # sequence for gaps, so id, stripe and sequence (assigned on insert) are not hashed.
    HASHED_FIELDS = (
        "event",
        "event_time",
        "patient_id",
        "care_group_id",
        "user_id",
        "responsible_user",
        "organisation_id",
        "roles",
        "data_category",
        "action",
        "purpose",
        "decision",
        "basis",
        "reason",
        "emergency",
        "emergency_reason",
        "access_point",
    )

    def canonical(self) -> str:
        """The entry's content as canonical JSON (sorted keys, no spaces, UTC microseconds)."""
        return canonical_json(self)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """What a new access-log entry says: the hashed fields of :class:`AccessLogEntry`. The
    append turns it into a row."""

    event: str
    event_time: dt.datetime
    patient_id: str
    care_group_id: str
    user_id: str
    responsible_user: str
    organisation_id: str
    roles: str
    data_category: str
    action: str
    purpose: str
    decision: str
    basis: str
    reason: str
    emergency: bool
    emergency_reason: str
    access_point: str

    def canonical(self) -> str:
        return canonical_json(self)


@dataclass(frozen=True)
class AppendedEntry:
    """Where an appended entry landed in the log."""

    id: int
    stripe: int
    sequence: int
    entry_hash: str


def canonical_json(entry: AccessLogEntry | LogRecord) -> str:
    """An entry's hashed content as canonical JSON (sorted keys, no spaces, UTC microseconds)."""
    content = {}
    for name in AccessLogEntry.HASHED_FIELDS:
        value = getattr(entry, name)
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).isoformat(timespec="microseconds")
        content[name] = value
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def chain_hash(previous_hash: str, canonical: str) -> str:
    """The unkeyed (legacy) link: anyone with the rows can recompute it, so it protects only
    entries anchored by a signed checkpoint; new entries use identity.access_log.keyed_link."""
    return hashlib.sha256((previous_hash + canonical).encode()).hexdigest()


GENESIS_HASH = "0" * 64


MAX_LOG_STRIPES = 64


class AccessLogHead(Base):
    """The end of one stripe's hash chain; locking this row orders appends to the stripe."""

    __tablename__ = "access_log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    # The hash before last_hash: lets one UPDATE ... RETURNING hand out both links.
    previous_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)


class Person(Base):
    """A person of an organisation, as the realm knows them: whom a delegate system client
    of that organisation may act for (``x-carenet-on-behalf-of``). See identity.people."""

    __tablename__ = "people"

    # The person's Keycloak user id: the ``sub`` of their own tokens.
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    username: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[str] = mapped_column(String(63), index=True)
    care_group_id: Mapped[str] = mapped_column(String(63))
    # Realm roles, comma-separated and sorted: the roles a delegated decision uses.
    roles: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(",") if r)


class RequestRecord(RequestRecordColumns, Base):
    """A create that carried a ``request_id`` (AIP-155): a repeat returns the first result.
    Its ``fingerprint`` is an HMAC under the BSN pepper (identity.use_cases.common): a
    RegisterPatient request holds a BSN that a plain hash would let anyone with the table
    recover."""

    __tablename__ = "request_records"


def normalise_bsn(value: str) -> str | None:
    """The 9-digit BSN, or ``None`` when it fails the format or the 11-test.

    An 8-digit number gets a leading zero. Weights 9..2 and -1; the sum must be divisible
    by 11. Passing does not mean the number was issued.
    """
    digits = value.strip()
    if len(digits) == 8:
        digits = "0" + digits
    if len(digits) != 9 or not digits.isdigit():
        return None
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    total = sum(w * int(d) for w, d in zip(weights, digits, strict=True))
    if total % 11 != 0 or digits == "000000000":
        return None
    return digits

"""The referral data model, with its rules as methods: offer curation, recognition expiry,
capacity, and the referral status machine (after the HL7 SDOH "Gravity" IG)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Computed,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INT4MULTIRANGE
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.db import UtcDateTime, new_metadata, utcnow
from servicekit.request_records import RequestRecordColumns
from servicekit.versioned import VersionedColumns


class Base(DeclarativeBase):
    metadata = new_metadata()


class OfferCategory(enum.StrEnum):
    GLI = "gli"
    PHYSICAL_ACTIVITY = "physical-activity"
    NUTRITION = "nutrition"
    SMOKING_CESSATION = "smoking-cessation"
    STRESS_AND_SLEEP = "stress-and-sleep"
    SOCIAL_AND_WELFARE = "social-and-welfare"
    PATIENT_EDUCATION = "patient-education"
    PEER_SUPPORT = "peer-support"


class OfferState(enum.StrEnum):
    DRAFT = "draft"
    PROPOSED = "proposed"
    LISTED = "listed"
    RETIRED = "retired"


class Funding(enum.StrEnum):
    BASIC_INSURANCE = "basic-insurance"
    MUNICIPALITY = "municipality"
    OWN_PAYMENT = "own-payment"
    SUPPLEMENTARY_INSURANCE = "supplementary-insurance"


class RecognitionLevel(enum.StrEnum):
    WELL_DESCRIBED = "well-described"
    WELL_FOUNDED = "well-founded"
    EFFECTIVE_FIRST = "effective-first-evidence"
    EFFECTIVE_GOOD = "effective-good-evidence"
    EFFECTIVE_STRONG = "effective-strong-evidence"


class CapacityStatus(enum.StrEnum):
    NO_CAPACITY = "no-capacity"
    CAPACITY = "capacity"
    WAITLIST = "waitlist"
    ADDITIONAL_ASSESSMENT = "additional-assessment-required"


class Status(enum.StrEnum):
    DRAFT = "draft"
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    FAILED = "failed"
    COMPLETED = "completed"
    ENTERED_IN_ERROR = "entered-in-error"


class BusinessStatus(enum.StrEnum):
    COULD_NOT_CONTACT = "could-not-contact"
    NOT_ELIGIBLE = "not-eligible"
    NO_CAPACITY = "no-capacity"
    NO_LONGER_INTERESTED = "no-longer-interested"
    REFERRED_ELSEWHERE = "referred-elsewhere"


class Enrolment(enum.StrEnum):
    ENROLLED = "enrolled"
    NOT_ENROLLED = "not-enrolled"
    NOT_ENROLLED_ON_WAITLIST = "not-enrolled-on-waitlist"


class Party(enum.StrEnum):
    REFERRER = "referrer"
    TARGET = "target"
    PATIENT = "patient"


REFERRER = frozenset({Party.REFERRER})
TARGET = frozenset({Party.TARGET})
EITHER = frozenset({Party.REFERRER, Party.TARGET})

# (from, to) -> who may make the transition (reference §1).
TRANSITIONS: dict[tuple[Status, Status], frozenset[Party]] = {
    (Status.DRAFT, Status.REQUESTED): REFERRER,
    (Status.REQUESTED, Status.ACCEPTED): TARGET,
    (Status.REQUESTED, Status.REJECTED): TARGET,
    (Status.REQUESTED, Status.CANCELLED): EITHER,
    (Status.ACCEPTED, Status.IN_PROGRESS): TARGET,
    (Status.ACCEPTED, Status.ON_HOLD): TARGET,
    (Status.ACCEPTED, Status.CANCELLED): EITHER,
    (Status.ACCEPTED, Status.COMPLETED): TARGET,
    (Status.ACCEPTED, Status.FAILED): TARGET,
    (Status.IN_PROGRESS, Status.COMPLETED): TARGET,
    (Status.IN_PROGRESS, Status.FAILED): TARGET,
    (Status.IN_PROGRESS, Status.CANCELLED): EITHER,
    (Status.IN_PROGRESS, Status.ON_HOLD): TARGET,
    (Status.ON_HOLD, Status.IN_PROGRESS): TARGET,
    (Status.ON_HOLD, Status.CANCELLED): EITHER,
    (Status.ON_HOLD, Status.COMPLETED): TARGET,
    (Status.ON_HOLD, Status.FAILED): TARGET,
}
# Any status -> entered-in-error, by the referrer (once).
for _status in Status:
    if _status is not Status.ENTERED_IN_ERROR:
        TRANSITIONS[(_status, Status.ENTERED_IN_ERROR)] = REFERRER

REASON_REQUIRED = frozenset({Status.REJECTED, Status.CANCELLED, Status.ON_HOLD, Status.FAILED})
OPEN = frozenset(
    {Status.DRAFT, Status.REQUESTED, Status.ACCEPTED, Status.IN_PROGRESS, Status.ON_HOLD}
)
# States that need a place in the course (a waitlisted referral must get one first).
NEEDS_PLACE = frozenset({Status.IN_PROGRESS, Status.COMPLETED})
# Outcomes may be recorded once the target has acted.
OUTCOME_STATES = frozenset(
    {Status.ACCEPTED, Status.IN_PROGRESS, Status.ON_HOLD, Status.COMPLETED, Status.FAILED}
)


class TransitionRefusal(enum.Enum):
    """Why a transition is refused: not in the machine at all, or not for this party."""

    NOT_IN_MACHINE = "INVALID_TRANSITION"
    WRONG_PARTY = "TRANSITION_NOT_ALLOWED_FOR_PARTY"


def check_transition(current: Status, target: Status, party: Party) -> TransitionRefusal | None:
    parties = TRANSITIONS.get((current, target))
    if parties is None:
        return TransitionRefusal.NOT_IN_MACHINE
    if party not in parties:
        return TransitionRefusal.WRONG_PARTY
    return None


class Offer(VersionedColumns, Base):
    __tablename__ = "offers"
    __table_args__ = (Index("ix_offers_care_group_state", "care_group_id", "state"),)

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    care_group_id: Mapped[str] = mapped_column(String(63))
    owner_org_id: Mapped[str] = mapped_column(String(63), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default=OfferState.DRAFT.value)
    # The reason given with the last curation decision (RetireOffer's reason; migration 0006).
    state_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    target_conditions: Mapped[list[str]] = mapped_column(JSON, default=list)
    service_area: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    schedules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    application_process: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cost_options: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recognition_level: Mapped[str | None] = mapped_column(String(40))
    recognition_valid_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    capacity_status: Mapped[str | None] = mapped_column(String(40))
    total_places: Mapped[int] = mapped_column(Integer, default=0)
    places_taken: Mapped[int] = mapped_column(Integer, default=0)
    waitlist_length: Mapped[int] = mapped_column(Integer, default=0)
    capacity_notes: Mapped[str] = mapped_column(Text, default="")
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    eligibility_description: Mapped[str] = mapped_column(Text, default="")
    # The service area as PostgreSQL computes it from service_area on every write (migration
    # 0003), for FindOffers' area filter; never written by the service.
    area_municipalities: Mapped[list[str]] = mapped_column(
        ARRAY(Text), Computed("referral_area_municipalities(service_area)", persisted=True)
    )
    area_postcodes: Mapped[Any] = mapped_column(
        INT4MULTIRANGE, Computed("referral_area_postcodes(service_area)", persisted=True)
    )

    def recognition_expired(self, now: dt.datetime) -> bool:
        return self.recognition_valid_until is not None and self.recognition_valid_until <= now

    def on_menu(self, now: dt.datetime) -> bool:
        """Listed, and not dropped off by an expired recognition."""
        return self.state == OfferState.LISTED.value and not self.recognition_expired(now)

    @property
    def counts_places(self) -> bool:
        return self.total_places > 0

    def has_free_place(self) -> bool:
        if self.counts_places:
            return self.places_taken < self.total_places
        return self.capacity_status not in (
            CapacityStatus.NO_CAPACITY.value,
            CapacityStatus.WAITLIST.value,
        )

    def effective_capacity(self) -> CapacityStatus:
        """The capacity status a referrer sees: declared, corrected by counted places."""
        declared = CapacityStatus(self.capacity_status or CapacityStatus.CAPACITY.value)
        if declared is CapacityStatus.NO_CAPACITY:
            return declared
        if self.counts_places and self.places_taken >= self.total_places:
            return CapacityStatus.WAITLIST
        return declared

    @property
    def fundings(self) -> set[str]:
        return {str(c.get("funding")) for c in self.cost_options}


class OfferMenuVersion(Base):
    """Bumped by a trigger at the commit of any change of a care group's offers (migration
    0003); a cached menu card is current while this is unchanged. Never written here."""

    __tablename__ = "offer_menu_versions"

    care_group_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class Referral(VersionedColumns, Base):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_care_group_patient", "care_group_id", "patient_id"),
        Index("ix_referrals_waitlist", "offer_id", "waitlist_position"),
    )

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(128))
    care_group_id: Mapped[str] = mapped_column(String(63))
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"))
    referrer_org_id: Mapped[str] = mapped_column(String(63), index=True)
    referrer_user: Mapped[str] = mapped_column(String(200))
    referrer_role: Mapped[str] = mapped_column(String(32))
    target_org_id: Mapped[str] = mapped_column(String(63), index=True)
    reason: Mapped[str] = mapped_column(Text)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20))
    business_status: Mapped[str | None] = mapped_column(String(32))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    enrolment: Mapped[str] = mapped_column(String(32), default=Enrolment.NOT_ENROLLED.value)
    waitlist_position: Mapped[int] = mapped_column(Integer, default=0)
    holds_place: Mapped[bool] = mapped_column(Boolean, default=False)
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # "<patient>/<offer>/<referrer organisation>" while the referral is open, else NULL: at
    # most one open referral per patient, offer and referring organisation, enforced by a
    # unique constraint (NULLs never collide). Scoped to the referrer so that a duplicate is
    # always the caller's own organisation's referral (referral.duplicates).
    open_key: Mapped[str | None] = mapped_column(String(256), unique=True)

    @property
    def name(self) -> str:
        return f"patients/{self.patient_id}/referrals/{self.id}"

    @staticmethod
    def open_key_for(patient_id: str, offer_id: str, referrer_org_id: str) -> str:
        return f"{patient_id}/{offer_id}/{referrer_org_id}"

    @property
    def is_open(self) -> bool:
        return Status(self.status) in OPEN

    def set_status(self, status: Status) -> None:
        self.status = status.value
        self.open_key = (
            self.open_key_for(self.patient_id, self.offer_id, self.referrer_org_id)
            if status in OPEN
            else None
        )


class HistoryEntry(Base):
    """Every change of a referral: who, when, from which state, and why."""

    __tablename__ = "referral_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    business_status: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200))
    actor_org_id: Mapped[str] = mapped_column(String(63), default="")
    change_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class OutboxEvent(Base):
    """The transactional outbox. ``id`` is the cursor clients see once the event is
    numbered. A writer inserts its event with a negative ``id`` from a sequence
    (``-nextval('outbox_id_seq')``), taking no lock that another writer waits for; a reader
    numbers it after the commit (``ReferralRepository.number_events``): one reader at a time
    (the ``outbox_head`` row's lock) gives the committed events it sees with a negative id
    the next cursors, in the order of the sequence. An event that commits later gets a
    later cursor, so no reader ever passes an event it has not seen, and readers read only
    ``id > cursor >= 0``."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_care_group_id", "care_group_id", "id"),
        Index("ix_outbox_unnumbered", "id", postgresql_where=text("id < 0")),
    )

    id: Mapped[int] = mapped_column(
        BigInteger,
        primary_key=True,
        autoincrement=False,
        server_default=text("-nextval('outbox_id_seq')"),
    )
    event_id: Mapped[str] = mapped_column(String(32), unique=True)
    event_type: Mapped[str] = mapped_column(String(32))
    referral_id: Mapped[str] = mapped_column(String(63), index=True)
    patient_id: Mapped[str] = mapped_column(String(128))
    care_group_id: Mapped[str] = mapped_column(String(63))
    referrer_org_id: Mapped[str] = mapped_column(String(63))
    target_org_id: Mapped[str] = mapped_column(String(63))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class OutboxHead(Base):
    """One row: the last cursor handed out. Its row lock is the numbering's (readers), no
    writer's."""

    __tablename__ = "outbox_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)


class RequestRecord(RequestRecordColumns, Base):
    """A create's request_id (AIP-155): a repeat of the same request returns the first
    result; the same id with a different request (another fingerprint) is refused
    (servicekit.idempotency)."""

    __tablename__ = "request_records"

"""The careplan data model, with its rules as methods.

A plan is stored as one row holding the current content as a JSON document, plus one
immutable revision row per version holding the full snapshot. Reading a plan is one
SELECT by primary key; reading a past version is one SELECT of its revision.

The content itself is plain dataclasses (``PlanContent`` and its parts); ``to_document`` and
``from_document`` turn them into JSON-safe dicts and back, losslessly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any, TypeVar, Union

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.db import UtcDateTime, new_metadata, utcnow
from servicekit.request_records import RequestRecordColumns
from servicekit.versioned import weak_etag

# ---------------------------------------------------------------- vocabularies (reference §3)


class PlanStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ON_HOLD = "on-hold"
    REVOKED = "revoked"
    COMPLETED = "completed"
    ENTERED_IN_ERROR = "entered-in-error"


class GoalLifecycle(enum.StrEnum):
    PROPOSED = "proposed"
    PLANNED = "planned"
    ACCEPTED = "accepted"
    ACTIVE = "active"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    ENTERED_IN_ERROR = "entered-in-error"


class GoalAchievement(enum.StrEnum):
    IN_PROGRESS = "in-progress"
    IMPROVING = "improving"
    WORSENING = "worsening"
    NO_CHANGE = "no-change"
    ACHIEVED = "achieved"
    NOT_ACHIEVED = "not-achieved"
    NO_PROGRESS = "no-progress"
    NOT_ATTAINABLE = "not-attainable"


class ActivityStatus(enum.StrEnum):
    NOT_STARTED = "not-started"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    STOPPED = "stopped"
    ENTERED_IN_ERROR = "entered-in-error"


class ActionKind(enum.StrEnum):
    CONSULT = "consult"
    REFERRAL = "referral"
    EHEALTH_MODULE = "ehealth-module"
    SELF_CARE = "self-care"
    MEDICATION_REVIEW = "medication-review"


class ParticipantRole(enum.StrEnum):
    COORDINATING_PRACTITIONER = "coordinating-practitioner"
    HOSPITAL = "hospital"
    MUNICIPALITY = "municipality"
    LIFESTYLE_PROVIDER = "lifestyle-provider"


# How a linked referral's status moves the action (referral status -> activity status).
REFERRAL_TO_ACTIVITY: dict[str, ActivityStatus] = {
    "draft": ActivityStatus.NOT_STARTED,
    "requested": ActivityStatus.NOT_STARTED,
    "accepted": ActivityStatus.SCHEDULED,
    "in-progress": ActivityStatus.IN_PROGRESS,
    "on-hold": ActivityStatus.ON_HOLD,
    "completed": ActivityStatus.COMPLETED,
    "failed": ActivityStatus.STOPPED,
    "rejected": ActivityStatus.CANCELLED,
    "cancelled": ActivityStatus.CANCELLED,
    "entered-in-error": ActivityStatus.ENTERED_IN_ERROR,
}


# ---------------------------------------------------------------- the content


@dataclasses.dataclass
class Condition:
    id: str = ""
    code: str = ""
    system: str = ""
    display: str = ""


@dataclasses.dataclass
class Participant:
    id: str = ""
    role: ParticipantRole | None = None
    organisation: str = ""  # organisation id
    persons: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class InformalCarer:
    id: str = ""
    user: str = ""  # the carer's token `sub`
    display_name: str = ""
    mandate_time: dt.datetime | None = None


@dataclasses.dataclass
class GoalTarget:
    measure: str = ""
    low: float | None = None
    high: float | None = None
    unit: str = ""
    due_time: dt.datetime | None = None


@dataclasses.dataclass
class ProgressEntry:
    id: str = ""
    text: str = ""
    value: float | None = None
    achievement_status: GoalAchievement | None = None
    author: str = ""
    record_time: dt.datetime | None = None

    def same_entry(self, other: ProgressEntry) -> bool:
        """Whether ``other`` restates this entry (server-set fields aside)."""
        return (self.text, self.value, self.achievement_status) == (
            other.text,
            other.value,
            other.achievement_status,
        )


@dataclasses.dataclass
class Goal:
    id: str = ""
    description: str = ""
    target: GoalTarget | None = None
    lifecycle_status: GoalLifecycle | None = None
    achievement_status: GoalAchievement | None = None
    owner: str = ""  # patients/{patient} or organisations/{organisation}
    addresses: list[str] = dataclasses.field(default_factory=list)
    notes: str = ""
    progress: list[ProgressEntry] = dataclasses.field(default_factory=list)
    create_time: dt.datetime | None = None

    def without_progress(self) -> Goal:
        return dataclasses.replace(self, progress=[])

    def same_content(self, other: Goal) -> bool:
        """Equal apart from progress entries and the server-set creation time."""
        mine = dataclasses.replace(self, progress=[], create_time=None)
        theirs = dataclasses.replace(other, progress=[], create_time=None)
        return mine == theirs


@dataclasses.dataclass
class ReferralState:
    status: str = ""
    business_status: str = ""
    enrolment: str = ""
    feedback_summary: str = ""
    update_time: dt.datetime | None = None
    # The organisation the referral is addressed to (from referral's events; not in the
    # API's LinkedReferralState): it sees this action in its part of the plan.
    target_organisation: str = ""


@dataclasses.dataclass
class Action:
    id: str = ""
    description: str = ""
    kind: ActionKind | None = None
    status: ActivityStatus | None = None
    responsible_organisation: str = ""  # organisation id
    responsible_person: str = ""
    schedule: str = ""
    due_time: dt.datetime | None = None
    referral: str = ""  # patients/{patient}/referrals/{referral}
    referral_state: ReferralState | None = None
    goals: list[str] = dataclasses.field(default_factory=list)

    def same_content(self, other: Action) -> bool:
        """Equal apart from the referral state, which only the referral events write."""
        return dataclasses.replace(self, referral_state=None) == dataclasses.replace(
            other, referral_state=None
        )

    def follow_referral(self, state: ReferralState) -> bool:
        """Takes over a linked referral's new state; returns whether anything changed."""
        status = REFERRAL_TO_ACTIVITY.get(state.status)
        previous = self.referral_state
        if previous is not None and not state.feedback_summary:
            state = dataclasses.replace(state, feedback_summary=previous.feedback_summary)
        changed = state != previous or (status is not None and status != self.status)
        self.referral_state = state
        if status is not None:
            self.status = status
        return changed


@dataclasses.dataclass
class EvaluationMoment:
    id: str = ""
    review_time: dt.datetime | None = None
    outcome: str = ""
    organisation: str = ""  # organisation id


@dataclasses.dataclass
class ConsultPreparation:
    topics: list[str] = dataclasses.field(default_factory=list)
    questions: list[str] = dataclasses.field(default_factory=list)
    agenda: list[str] = dataclasses.field(default_factory=list)
    next_consult_time: dt.datetime | None = None


@dataclasses.dataclass
class PlanContent:
    """Everything in a plan that its participants write."""

    status: PlanStatus | None = None
    what_matters: list[str] = dataclasses.field(default_factory=list)
    conditions: list[Condition] = dataclasses.field(default_factory=list)
    participants: list[Participant] = dataclasses.field(default_factory=list)
    informal_carers: list[InformalCarer] = dataclasses.field(default_factory=list)
    goals: list[Goal] = dataclasses.field(default_factory=list)
    actions: list[Action] = dataclasses.field(default_factory=list)
    evaluations: list[EvaluationMoment] = dataclasses.field(default_factory=list)
    consult_preparation: ConsultPreparation = dataclasses.field(default_factory=ConsultPreparation)

    def goal(self, goal_id: str) -> Goal | None:
        return next((g for g in self.goals if g.id == goal_id), None)

    def mandates(self, user: str) -> bool:
        """Whether the patient has mandated ``user`` as informal carer."""
        return bool(user) and any(c.user == user for c in self.informal_carers)

    def actions_linked_to(self, referral: str) -> list[Action]:
        return [a for a in self.actions if a.referral and a.referral == referral]


@dataclasses.dataclass
class PlanView:
    """A plan as read: its content plus who holds it and which version it is."""

    patient_id: str
    care_group_id: str
    record_holder_id: str
    version: int
    content: PlanContent
    create_time: dt.datetime
    update_time: dt.datetime

    @property
    def etag(self) -> str:
        return weak_etag(self.version)


# ---------------------------------------------------------------- JSON codec

T = TypeVar("T")


def to_document(value: Any) -> Any:
    """A JSON-safe rendering of a content dataclass (datetimes as ISO 8601 strings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_document(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [to_document(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return value


_FIELDS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _fields_of(cls: type) -> tuple[tuple[str, Any], ...]:
    """Each field's name and resolved type (resolving them is slow, so once per class)."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))
        _FIELDS[cls] = found
    return found


def from_document(cls: type[T], data: Any) -> T:
    """The inverse of :func:`to_document` for the dataclass ``cls``."""
    kwargs = {name: _decode(hint, data[name]) for name, hint in _fields_of(cls) if name in data}
    return cls(**kwargs)


def _decode(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode(inner, value)
    if origin is list:
        (inner,) = typing.get_args(hint)
        return [_decode(inner, v) for v in value]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_document(hint, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is dt.datetime:
        return dt.datetime.fromisoformat(value)
    if hint is float and value is not None:
        return float(value)
    return value


def view_to_document(view: PlanView) -> dict[str, Any]:
    return {
        "patient_id": view.patient_id,
        "care_group_id": view.care_group_id,
        "record_holder_id": view.record_holder_id,
        "version": view.version,
        "create_time": to_document(view.create_time),
        "update_time": to_document(view.update_time),
        "content": to_document(view.content),
    }


def view_from_document(data: dict[str, Any]) -> PlanView:
    return PlanView(
        patient_id=data["patient_id"],
        care_group_id=data["care_group_id"],
        record_holder_id=data["record_holder_id"],
        version=int(data["version"]),
        create_time=dt.datetime.fromisoformat(data["create_time"]),
        update_time=dt.datetime.fromisoformat(data["update_time"]),
        content=from_document(PlanContent, data["content"]),
    )


# ---------------------------------------------------------------- tables


class Base(DeclarativeBase):
    metadata = new_metadata()


class CarePlanRow(Base):
    """The current version of a patient's one plan (a singleton per patient)."""

    __tablename__ = "care_plans"

    patient_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    care_group_id: Mapped[str] = mapped_column(String(63), index=True)
    record_holder_id: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    def view(self) -> PlanView:
        return view_from_document(self.document)


class CarePlanRevisionRow(Base):
    """One immutable version of a plan: the full snapshot, who wrote it and what changed."""

    __tablename__ = "care_plan_revisions"

    patient_id: Mapped[str] = mapped_column(ForeignKey("care_plans.patient_id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[str] = mapped_column(String(63))
    change_summary: Mapped[str] = mapped_column(Text)
    changed_fields: Mapped[str] = mapped_column(String(300))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class RequestRecord(RequestRecordColumns, Base):
    """A create or item edit that carried a ``request_id`` (AIP-155): a repeat of the same
    request returns the first result; the id with another request is refused. Its
    ``resource_name`` is the plan a create made, or the revision an item edit wrote."""

    __tablename__ = "request_records"


class EventCursor(Base):
    """How far a consumer has read a stream; advanced in the transaction that applies."""

    __tablename__ = "event_cursors"

    consumer: Mapped[str] = mapped_column(String(63), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AppliedEvent(Base):
    """A referral event that changed a plan: applying it again is a no-op."""

    __tablename__ = "applied_events"

    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    patient_id: Mapped[str] = mapped_column(String(128))
    plan_version: Mapped[int] = mapped_column(Integer)
    apply_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

"""Proto messages to the use cases' inputs and their results back to proto: the only module
besides the servicer that knows the wire format."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from carenet.referral.v1 import referral_pb2 as pb
from referral import eligibility, models
from referral.use_cases import events
from referral.use_cases.history import ReferralView
from referral.use_cases.offers import OfferInput
from referral.use_cases.transitions import OutcomeInput
from servicekit import enums
from servicekit.enums import EnumMap
from servicekit.timestamps import from_request, to_proto

CATEGORIES = EnumMap(pb.OfferCategory, models.OfferCategory)
STATES = EnumMap(pb.OfferState, models.OfferState)
FUNDINGS = EnumMap(pb.Funding, models.Funding)
RECOGNITIONS = EnumMap(pb.RecognitionLevel, models.RecognitionLevel)
CAPACITIES = EnumMap(pb.CapacityStatus, models.CapacityStatus)
STATUSES = EnumMap(pb.ReferralStatus, models.Status)
BUSINESS = EnumMap(pb.BusinessStatus, models.BusinessStatus)
ENROLMENTS = EnumMap(pb.Enrolment, models.Enrolment)
ATTENDANCE = EnumMap(pb.Attendance, ["none", "partial", "full"])
EVENT_TYPES = EnumMap(
    pb.ReferralEventType, ["created", "status-changed", "outcome-recorded", "enrolment-changed"]
)
FIELDS = EnumMap(pb.ProfileField, sorted(eligibility.FIELDS))
OPERATORS = EnumMap(pb.Operator, [*eligibility.NUMERIC_OPS, *sorted(eligibility.LIST_OPS)])


def ts(value: Timestamp, present: bool, field: str) -> dt.datetime | None:
    """A request's Timestamp as an aware datetime; out of range is INVALID_ARGUMENT naming
    ``field``."""
    return from_request(value, field, present)


def iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value else ""


def from_iso(value: str | None) -> Timestamp | None:
    return to_proto(dt.datetime.fromisoformat(value)) if value else None


# ------------------------------------------------------------------ rules


def rule_from_proto(rule: pb.EligibilityRule) -> dict[str, Any]:
    """Proto rule -> rule data. Unknown enum values become ``None`` so that validation
    names their path."""
    kind = rule.WhichOneof("rule")
    if kind in ("all", "any"):
        group = rule.all if kind == "all" else rule.any
        return {kind: [rule_from_proto(r) for r in group.rules]}
    if kind == "not":
        inner = getattr(rule, "not")
        return {"not": rule_from_proto(inner) if inner.WhichOneof("rule") else {}}
    if kind == "predicate":
        p = rule.predicate
        out: dict[str, Any] = {"field": FIELDS.get(p.field), "op": OPERATORS.get(p.operator)}
        if p.HasField("number"):
            out["number"] = p.number
        if p.values:
            out["values"] = list(p.values)
        return out
    return {}


def rule_to_proto(rule: dict[str, Any] | None) -> pb.EligibilityRule:
    out = pb.EligibilityRule()
    if not rule:
        return out
    if "all" in rule:
        out.all.rules.extend(rule_to_proto(r) for r in rule["all"])
    elif "any" in rule:
        out.any.rules.extend(rule_to_proto(r) for r in rule["any"])
    elif "not" in rule:
        getattr(out, "not").CopyFrom(rule_to_proto(rule["not"]))
    else:
        out.predicate.CopyFrom(predicate_to_proto(rule))
    return out


def predicate_to_proto(rule: dict[str, Any]) -> pb.Predicate:
    p = pb.Predicate(
        field=pb.ProfileField.ValueType(FIELDS.to_proto(rule.get("field"))),
        operator=pb.Operator.ValueType(OPERATORS.to_proto(rule.get("op"))),
    )
    if rule.get("number") is not None:
        p.number = float(rule["number"])
    p.values.extend(rule.get("values") or [])
    return p


def profile_from_proto(p: pb.PatientProfile, referrer_role: str = "") -> eligibility.Profile:
    return eligibility.Profile(
        conditions=tuple(p.conditions),
        age=p.age if p.HasField("age") else None,
        bmi=p.bmi if p.HasField("bmi") else None,
        risk_factors=tuple(p.risk_factors),
        pam_level=p.pam_level if p.HasField("pam_level") else None,
        postcode=p.postcode,
        municipality=p.municipality_code,
        languages=tuple(p.languages),
        referrer_role=referrer_role,
    )


def profile_to_proto(d: dict[str, Any]) -> pb.PatientProfile:
    p = pb.PatientProfile(
        conditions=d.get("conditions") or [],
        risk_factors=d.get("risk_factors") or [],
        postcode=d.get("postcode") or "",
        municipality_code=d.get("municipality") or "",
        languages=d.get("languages") or [],
    )
    if d.get("age") is not None:
        p.age = int(d["age"])
    if d.get("bmi") is not None:
        p.bmi = float(d["bmi"])
    if d.get("pam_level") is not None:
        p.pam_level = int(d["pam_level"])
    return p


def result_to_proto(result: eligibility.Result) -> pb.EligibilityResult:
    return pb.EligibilityResult(
        eligible=result.eligible,
        outcomes=[
            pb.PredicateOutcome(
                path=o.path,
                predicate=predicate_to_proto(o.predicate),
                satisfied=o.satisfied,
                explanation=o.explanation,
            )
            for o in result.outcomes
        ],
    )


# ------------------------------------------------------------------ offers


def offer_input(o: pb.Offer, path: str = "offer") -> OfferInput:
    return OfferInput(
        display_name=o.display_name,
        description=o.description,
        category=enums.from_proto(CATEGORIES, o.category, "offer.category"),
        target_conditions=list(o.target_conditions),
        service_area={
            "municipality_codes": list(o.service_area.municipality_codes),
            "postcode_ranges": [
                {"first": r.first, "last": r.last} for r in o.service_area.postcode_ranges
            ],
            "description": o.service_area.description,
        },
        schedules=[
            {
                "freq": s.freq,
                "interval": s.interval,
                "byday": list(s.byday),
                "opens_at": s.opens_at,
                "closes_at": s.closes_at,
                "valid_from": iso(
                    ts(s.valid_from, s.HasField("valid_from"), f"{path}.schedules[{i}].valid_from")
                ),
                "valid_to": iso(
                    ts(s.valid_to, s.HasField("valid_to"), f"{path}.schedules[{i}].valid_to")
                ),
                "description": s.description,
            }
            for i, s in enumerate(o.schedules)
        ],
        languages=list(o.languages),
        application_process=o.application_process,
        contact={
            "name": o.contact.name,
            "email": o.contact.email,
            "phone": o.contact.phone,
            "url": o.contact.url,
        },
        cost_options=[
            {
                "funding": getattr(FUNDINGS.get(c.funding), "value", None),
                "amount_cents": c.amount_cents,
                "currency": c.currency or "EUR",
                "description": c.description,
                "valid_from": iso(
                    ts(
                        c.valid_from,
                        c.HasField("valid_from"),
                        f"{path}.cost_options[{i}].valid_from",
                    )
                ),
                "valid_to": iso(
                    ts(c.valid_to, c.HasField("valid_to"), f"{path}.cost_options[{i}].valid_to")
                ),
            }
            for i, c in enumerate(o.cost_options)
        ],
        recognition_level=enums.from_proto(
            RECOGNITIONS, o.recognition.level, "offer.recognition.level"
        ),
        recognition_valid_until=ts(
            o.recognition.valid_until,
            o.recognition.HasField("valid_until"),
            f"{path}.recognition.valid_until",
        ),
        capacity_status=enums.from_proto(CAPACITIES, o.capacity.status, "offer.capacity.status"),
        total_places=o.capacity.total_places,
        waitlist_length=o.capacity.waitlist_length,
        capacity_notes=o.capacity.notes,
        eligibility=rule_from_proto(o.eligibility),
        eligibility_description=o.eligibility_description,
        etag=o.etag,
    )


def offer_to_proto(offer: models.Offer, now: dt.datetime) -> pb.Offer:
    area = offer.service_area or {}
    return pb.Offer(
        name=f"offers/{offer.id}",
        display_name=offer.display_name,
        description=offer.description,
        category=pb.OfferCategory.ValueType(CATEGORIES.to_proto(offer.category)),
        owner_organisation=f"organisations/{offer.owner_org_id}",
        care_group=f"organisations/{offer.care_group_id}",
        state=pb.OfferState.ValueType(STATES.to_proto(offer.state)),
        target_conditions=offer.target_conditions,
        service_area=pb.ServiceArea(
            municipality_codes=area.get("municipality_codes") or [],
            postcode_ranges=[
                pb.PostcodeRange(first=r["first"], last=r["last"])
                for r in area.get("postcode_ranges") or []
            ],
            description=area.get("description") or "",
        ),
        schedules=[
            pb.Schedule(
                freq=s.get("freq", ""),
                interval=int(s.get("interval") or 0),
                byday=s.get("byday") or [],
                opens_at=s.get("opens_at", ""),
                closes_at=s.get("closes_at", ""),
                valid_from=from_iso(s.get("valid_from")),
                valid_to=from_iso(s.get("valid_to")),
                description=s.get("description", ""),
            )
            for s in offer.schedules
        ],
        languages=offer.languages,
        application_process=offer.application_process,
        contact=pb.Contact(
            **{
                k: str(v)
                for k, v in (offer.contact or {}).items()
                if k in ("name", "email", "phone", "url")
            }
        ),
        cost_options=[
            pb.CostOption(
                funding=pb.Funding.ValueType(FUNDINGS.to_proto(c.get("funding"))),
                amount_cents=int(c.get("amount_cents") or 0),
                currency=c.get("currency") or "EUR",
                description=c.get("description", ""),
                valid_from=from_iso(c.get("valid_from")),
                valid_to=from_iso(c.get("valid_to")),
            )
            for c in offer.cost_options
        ],
        recognition=pb.Recognition(
            level=pb.RecognitionLevel.ValueType(RECOGNITIONS.to_proto(offer.recognition_level)),
            valid_until=to_proto(offer.recognition_valid_until),
            expired=offer.recognition_expired(now),
        ),
        capacity=pb.Capacity(
            status=pb.CapacityStatus.ValueType(CAPACITIES.to_proto(offer.capacity_status)),
            total_places=offer.total_places,
            places_taken=offer.places_taken,
            waitlist_length=offer.waitlist_length,
            notes=offer.capacity_notes,
        ),
        eligibility=rule_to_proto(offer.eligibility),
        eligibility_description=offer.eligibility_description,
        create_time=to_proto(offer.create_time),
        update_time=to_proto(offer.update_time),
        etag=offer.etag,
        state_reason=offer.state_reason or "",
    )


# ------------------------------------------------------------------ referrals


def outcome_input(o: pb.ReferralOutcome, path: str = "outcome") -> OutcomeInput:
    return OutcomeInput(
        attendance=ATTENDANCE.get(o.attendance, ""),
        sessions_attended=o.sessions_attended,
        sessions_planned=o.sessions_planned,
        result_summary=o.result_summary,
        measurements=[
            {
                "code": m.code,
                "value": m.value,
                "unit": m.unit,
                "effective_time": iso(
                    ts(
                        m.effective_time,
                        m.HasField("effective_time"),
                        f"{path}.measurements[{i}].effective_time",
                    )
                ),
            }
            for i, m in enumerate(o.measurements)
        ],
        enrolment=enums.from_proto(ENROLMENTS, o.enrolment, "outcome.enrolment"),
    )


def outcome_to_proto(d: dict[str, Any] | None) -> pb.ReferralOutcome | None:
    if not d:
        return None
    return pb.ReferralOutcome(
        attendance=pb.Attendance.ValueType(ATTENDANCE.to_proto(d.get("attendance"))),
        sessions_attended=int(d.get("sessions_attended") or 0),
        sessions_planned=int(d.get("sessions_planned") or 0),
        result_summary=d.get("result_summary") or "",
        measurements=[
            pb.Measurement(
                code=m.get("code", ""),
                value=float(m.get("value") or 0.0),
                unit=m.get("unit", ""),
                effective_time=from_iso(m.get("effective_time")),
            )
            for m in d.get("measurements") or []
        ],
        enrolment=pb.Enrolment.ValueType(ENROLMENTS.to_proto(d.get("enrolment"))),
        record_time=from_iso(d.get("record_time")),
        recorded_by=d.get("recorded_by") or "",
    )


def referral_to_proto(view: ReferralView) -> pb.Referral:
    r = view.referral
    return pb.Referral(
        name=r.name,
        offer=f"offers/{r.offer_id}",
        reason=r.reason,
        profile=profile_to_proto(r.profile),
        status=pb.ReferralStatus.ValueType(STATUSES.to_proto(r.status)),
        business_status=pb.BusinessStatus.ValueType(BUSINESS.to_proto(r.business_status)),
        status_reason=r.status_reason,
        enrolment=pb.Enrolment.ValueType(ENROLMENTS.to_proto(r.enrolment)),
        waitlist_position=r.waitlist_position,
        referrer_organisation=f"organisations/{r.referrer_org_id}",
        referrer=r.referrer_user,
        target_organisation=f"organisations/{r.target_org_id}",
        care_group=f"organisations/{r.care_group_id}",
        eligibility=result_to_proto(eligibility.Result.from_dict(r.eligibility)),
        outcome=outcome_to_proto(r.outcome),
        history=[
            pb.StatusChange(
                from_status=pb.ReferralStatus.ValueType(STATUSES.to_proto(h.from_status)),
                to_status=pb.ReferralStatus.ValueType(STATUSES.to_proto(h.to_status)),
                business_status=pb.BusinessStatus.ValueType(BUSINESS.to_proto(h.business_status)),
                reason=h.reason,
                actor=h.actor,
                actor_organisation=f"organisations/{h.actor_org_id}" if h.actor_org_id else "",
                change_time=to_proto(h.change_time),
                kind=h.kind,
            )
            for h in view.history
        ],
        create_time=to_proto(r.create_time),
        update_time=to_proto(r.update_time),
        etag=r.etag,
    )


def event_to_proto(event: events.Event) -> pb.ReferralEvent:
    p = event.payload
    return pb.ReferralEvent(
        cursor=event.cursor,
        event_id=event.event_id,
        type=pb.ReferralEventType.ValueType(EVENT_TYPES.to_proto(p["type"])),
        event_time=from_iso(p.get("event_time")),
        referral=p["referral"],
        patient=p["patient"],
        offer=p["offer"],
        referrer_organisation=p["referrer_organisation"],
        target_organisation=p["target_organisation"],
        care_group=p["care_group"],
        status=pb.ReferralStatus.ValueType(STATUSES.to_proto(p.get("status"))),
        previous_status=pb.ReferralStatus.ValueType(STATUSES.to_proto(p.get("previous_status"))),
        business_status=pb.BusinessStatus.ValueType(BUSINESS.to_proto(p.get("business_status"))),
        enrolment=pb.Enrolment.ValueType(ENROLMENTS.to_proto(p.get("enrolment"))),
        waitlist_position=int(p.get("waitlist_position") or 0),
        outcome=outcome_to_proto(p.get("outcome")),
        actor=p.get("actor", ""),
        reason=p.get("reason", ""),
        offer_category=pb.OfferCategory.ValueType(CATEGORIES.to_proto(p.get("offer_category"))),
    )

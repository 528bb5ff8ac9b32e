"""ServiceRequest + Task (the Gravity closed-loop pattern) from a referral, and
HealthcareService from an offer of the menu card (shared/fhir.md sections 1 and 2)."""

from __future__ import annotations

from carenet.referral.v1 import referral_pb2 as pb
from fhir_api.resources.common import (
    Codes,
    Json,
    drop_empty,
    enum_code,
    inner_id,
    instant,
    last_segment,
    organisation_ref,
    patient_ref,
    reference,
    segment,
)

TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
UCUM = "http://unitsofmeasure.org"
BCP47 = "urn:ietf:bcp:47"
GRAVITY_CAPACITY = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
    "SDOHCC-ExtensionHealthcareServiceCapacityStatus"
)
GRAVITY_TEMPORARY = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
)

# Each referral status is one Task.status (the Gravity table); the ServiceRequest, which
# stays with the requester, is active until the loop closes.
TASK_STATUS = {
    value.number: enum_code(value.name, "REFERRAL_STATUS_")
    for value in pb.ReferralStatus.DESCRIPTOR.values
    if value.number
}
# The ServiceRequest stays with the requester: active while the loop is open, completed
# when it closed with feedback, revoked when the requester cancelled it. A referral the
# target cancelled (or rejected, or that failed) stays active: the requester decides next.
REQUEST_STATUS = {
    pb.REFERRAL_STATUS_DRAFT: "draft",
    pb.REFERRAL_STATUS_REQUESTED: "active",
    pb.REFERRAL_STATUS_ACCEPTED: "active",
    pb.REFERRAL_STATUS_REJECTED: "active",
    pb.REFERRAL_STATUS_IN_PROGRESS: "active",
    pb.REFERRAL_STATUS_ON_HOLD: "active",
    pb.REFERRAL_STATUS_FAILED: "active",
    pb.REFERRAL_STATUS_COMPLETED: "completed",
    pb.REFERRAL_STATUS_CANCELLED: "revoked",
    pb.REFERRAL_STATUS_ENTERED_IN_ERROR: "entered-in-error",
}
# Gravity: "If status is rejected, cancelled, on-hold, or failed, then statusReason.text
# should be included"; carenet always includes it for these.
REASON_STATUSES = frozenset(
    {
        pb.REFERRAL_STATUS_REJECTED,
        pb.REFERRAL_STATUS_CANCELLED,
        pb.REFERRAL_STATUS_ON_HOLD,
        pb.REFERRAL_STATUS_FAILED,
    }
)
NO_REASON_GIVEN = "Geen reden opgegeven"
BUSINESS_STATUS_TEXT = {
    pb.BUSINESS_STATUS_COULD_NOT_CONTACT: "Patiënt niet bereikt",
    pb.BUSINESS_STATUS_NOT_ELIGIBLE: "Voldoet niet aan de voorwaarden",
    pb.BUSINESS_STATUS_NO_CAPACITY: "Geen plaats",
    pb.BUSINESS_STATUS_NO_LONGER_INTERESTED: "Patiënt heeft geen interesse meer",
    pb.BUSINESS_STATUS_REFERRED_ELSEWHERE: "Elders naartoe verwezen",
}
TASK_STATUS_BY_CODE = {code: number for number, code in TASK_STATUS.items()}
DAYS = {"MO": "mon", "TU": "tue", "WE": "wed", "TH": "thu", "FR": "fri", "SA": "sat", "SU": "sun"}


def referral_id(referral: pb.Referral) -> str:
    return inner_id(segment(referral.name, "patients"), last_segment(referral.name))


def request_status(referral: pb.Referral) -> str:
    """ServiceRequest.status: revoked only when the requester's side cancelled."""
    if referral.status == pb.REFERRAL_STATUS_CANCELLED:
        cancelled = [c for c in referral.history if c.to_status == pb.REFERRAL_STATUS_CANCELLED]
        by = cancelled[-1].actor_organisation if cancelled else ""
        if by and by != referral.referrer_organisation:
            return "active"
    return REQUEST_STATUS.get(referral.status, "unknown")


def status_reason(referral: pb.Referral) -> str | None:
    """Task.statusReason.text: the reason given, else the business status in words; for a
    rejected, cancelled, on-hold or failed referral never empty."""
    text = referral.status_reason or BUSINESS_STATUS_TEXT.get(referral.business_status, "")
    if not text and referral.status in REASON_STATUSES:
        return NO_REASON_GIVEN
    return text or None


def business_status(referral: pb.Referral, codes: Codes) -> Json | None:
    """Task.businessStatus (a local code): why it did not help, else the waitlist."""
    if referral.business_status:
        code = enum_code(pb.BusinessStatus.Name(referral.business_status), "BUSINESS_STATUS_")
        return {
            "coding": [codes.coding("referral-business-status", code)],
            "text": BUSINESS_STATUS_TEXT.get(referral.business_status, code),
        }
    if referral.enrolment == pb.ENROLMENT_NOT_ENROLLED_ON_WAITLIST:
        text = "Op de wachtlijst"
        if referral.waitlist_position:
            text += f" (plaats {referral.waitlist_position})"
        return {"coding": [codes.coding("referral-business-status", "waitlisted")], "text": text}
    return None


def service_request(referral: pb.Referral, codes: Codes) -> Json:
    patient_id = segment(referral.name, "patients")
    resource: Json = {
        "resourceType": "ServiceRequest",
        "id": referral_id(referral),
        "meta": {"lastUpdated": instant(referral.update_time)},
        "identifier": [{"system": codes.naming("referral"), "value": referral.name}],
        "status": request_status(referral),
        "intent": "order",
        "category": [codes.concept("referral-category", "lifestyle-and-social")],
        "subject": patient_ref(patient_id),
        "authoredOn": instant(referral.create_time),
        "requester": organisation_ref(referral.referrer_organisation),
        "performer": [reference("HealthcareService", last_segment(referral.offer))],
        "reasonCode": [{"text": referral.reason}],
    }
    return drop_empty(resource)


def _feedback(outcome: pb.ReferralOutcome, codes: Codes) -> list[Json]:
    """The structured feedback of a closed loop as Task.output."""

    def output(code: str, **value: object) -> Json:
        return {"type": codes.concept("referral-feedback", code), **value}

    out: list[Json] = []
    if outcome.attendance:
        out.append(
            output(
                "attendance",
                valueCodeableConcept=codes.concept(
                    "attendance", enum_code(pb.Attendance.Name(outcome.attendance), "ATTENDANCE_")
                ),
            )
        )
    if outcome.sessions_planned:
        out.append(output("sessions-attended", valueInteger=outcome.sessions_attended))
        out.append(output("sessions-planned", valueInteger=outcome.sessions_planned))
    if outcome.enrolment:
        out.append(
            output(
                "enrolment",
                valueCodeableConcept=codes.concept(
                    "enrolment", enum_code(pb.Enrolment.Name(outcome.enrolment), "ENROLMENT_")
                ),
            )
        )
    if outcome.result_summary:
        out.append(output("result-summary", valueString=outcome.result_summary))
    for measurement in outcome.measurements:
        quantity: Json = {"value": measurement.value}
        if measurement.unit:
            quantity |= {"unit": measurement.unit, "system": UCUM, "code": measurement.unit}
        out.append(output(f"measurement-{measurement.code.lower()}", valueQuantity=quantity))
    return out


def task(referral: pb.Referral, codes: Codes) -> Json:
    patient_id = segment(referral.name, "patients")
    resource: Json = {
        "resourceType": "Task",
        "id": referral_id(referral),
        "meta": {"lastUpdated": instant(referral.update_time)},
        "status": TASK_STATUS.get(referral.status, "draft"),
        "statusReason": {"text": status_reason(referral)},
        "businessStatus": business_status(referral, codes),
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "focus": reference("ServiceRequest", referral_id(referral)),
        "for": patient_ref(patient_id),
        "authoredOn": instant(referral.create_time),
        "lastModified": instant(referral.update_time),
        "requester": organisation_ref(referral.referrer_organisation),
        "owner": organisation_ref(referral.target_organisation),
        "output": _feedback(referral.outcome, codes),
    }
    return drop_empty(resource)


def _time(value: str) -> str | None:
    """``09:30`` -> ``09:30:00`` (FHIR time)."""
    if not value:
        return None
    return value if value.count(":") == 2 else f"{value}:00"


def healthcare_service(offer: pb.Offer, codes: Codes) -> Json:
    capacity = offer.capacity
    costs = [
        f"{c.description or enum_code(pb.Funding.Name(c.funding), 'FUNDING_')}: "
        + (f"{c.amount_cents / 100:.2f} {c.currency or 'EUR'}" if c.amount_cents else "geen kosten")
        for c in offer.cost_options
    ]
    resource: Json = {
        "resourceType": "HealthcareService",
        "id": last_segment(offer.name),
        "meta": {"lastUpdated": instant(offer.update_time)},
        "active": offer.state == pb.OFFER_STATE_LISTED,
        "providedBy": organisation_ref(offer.owner_organisation),
        "category": [
            codes.concept(
                "offer-category",
                enum_code(pb.OfferCategory.Name(offer.category), "OFFER_CATEGORY_"),
            )
        ],
        "name": offer.display_name,
        "comment": offer.description,
        "extraDetails": "\n".join(f"- {line}" for line in costs),
        "telecom": [
            {"system": "phone", "value": offer.contact.phone},
            {"system": "email", "value": offer.contact.email},
            {"system": "url", "value": offer.contact.url},
        ],
        "characteristic": [
            codes.concept(
                "recognition-level",
                enum_code(pb.RecognitionLevel.Name(offer.recognition.level), "RECOGNITION_LEVEL_"),
            )
        ]
        if offer.recognition.level
        else [],
        "specialty": [{"text": condition} for condition in offer.target_conditions],
        "serviceProvisionCode": [
            codes.concept("funding", enum_code(pb.Funding.Name(c.funding), "FUNDING_"))
            for c in offer.cost_options
        ],
        "eligibility": [
            {
                "code": {"text": offer.eligibility_description or "Zie de voorwaarden"},
                "comment": offer.application_process,
            }
        ]
        if offer.eligibility_description or offer.application_process
        else [],
        "communication": [
            {"coding": [{"system": BCP47, "code": language}]} for language in offer.languages
        ],
        "availableTime": [
            {
                "daysOfWeek": [DAYS[d] for d in s.byday if d in DAYS],
                "availableStartTime": _time(s.opens_at),
                "availableEndTime": _time(s.closes_at),
            }
            for s in offer.schedules
        ],
        "availabilityExceptions": "; ".join(
            s.description for s in offer.schedules if s.description
        ),
        "extension": [
            {
                "url": GRAVITY_CAPACITY,
                "extension": [
                    {
                        "url": "capacityStatus",
                        "valueCodeableConcept": {
                            "coding": [
                                {
                                    "system": GRAVITY_TEMPORARY,
                                    "code": enum_code(
                                        pb.CapacityStatus.Name(capacity.status), "CAPACITY_STATUS_"
                                    ),
                                }
                            ]
                        },
                    },
                    {"url": "capacityNotes", "valueString": capacity.notes},
                ],
            }
        ]
        if capacity.status
        else [],
    }
    return drop_empty(resource)

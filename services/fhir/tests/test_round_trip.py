"""The round trip on generated data (``generated.py``, one printed seed): for every resource
type the API produces, what the FHIR API answers equals, element by element, what this test
expects from the gRPC API's answer for the same thing.

The expectations are written here, from the mapping tables of the README and shared/fhir.md,
with literal code tables; the production mapper (``fhir_api.resources``) is not used, so a
broken mapping fails here. Every resource is also validated against the FHIR models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.careplan.v1 import careplan_pb2 as cp
from carenet.careplan.v1 import careplan_service_pb2 as cp_rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as cp_grpc
from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from carenet.outcomes.v1 import outcomes_pb2 as oc
from carenet.outcomes.v1 import outcomes_service_pb2 as oc_rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as oc_grpc
from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rf_grpc

from .conftest import FhirApi
from .generated import ADMIN, AUDITOR, GP, INSURER, World, generate, seed
from .valuesets import (
    CARE_PLAN_ACTIVITY_STATUS,
    GOAL_ACHIEVEMENT,
    GOAL_STATUS,
    GRAVITY_TASK_STATUS,
    REQUEST_STATUS,
    valid,
)

Json = dict[str, Any]
BASE = "https://carenet.example/fhir"  # FHIR_CANONICAL_BASE's default
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
MASKED = {
    "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "masked"}
    ]
}

# ------------------------------------------------------------------ the code tables, literally

PLAN_STATUS = {1: "draft", 2: "active", 3: "on-hold", 4: "revoked", 5: "completed",
               6: "entered-in-error"}  # fmt: skip
GOAL_LIFECYCLE = {1: "proposed", 2: "planned", 3: "accepted", 4: "active", 5: "on-hold",
                  6: "completed", 7: "cancelled", 8: "rejected", 9: "entered-in-error"}  # fmt: skip
ACHIEVEMENT = {1: "in-progress", 2: "improving", 3: "worsening", 4: "no-change", 5: "achieved",
               6: "not-achieved", 7: "no-progress", 8: "not-attainable"}  # fmt: skip
ACTIVITY = {1: "not-started", 2: "scheduled", 3: "in-progress", 4: "on-hold", 5: "completed",
            6: "cancelled", 7: "stopped", 8: "entered-in-error"}  # fmt: skip
ACTION_KIND = {1: "consult", 2: "referral", 3: "ehealth-module", 4: "self-care",
               5: "medication-review"}  # fmt: skip
CONDITION_SYSTEM = {
    "ICPC-1": "http://hl7.org/fhir/sid/icpc-1-nl",
    "SNOMED": "http://snomed.info/sct",
}
# the Gravity table (README "Referral statuses")
TASK = {1: "draft", 2: "requested", 3: "accepted", 4: "rejected", 5: "cancelled",
        6: "in-progress", 7: "on-hold", 8: "failed", 9: "completed", 10: "entered-in-error"}  # fmt: skip
SERVICE_REQUEST = {1: "draft", 2: "active", 3: "active", 4: "active", 6: "active", 7: "active",
                   8: "active", 9: "completed", 10: "entered-in-error"}  # fmt: skip
BUSINESS = {
    1: ("could-not-contact", "Patiënt niet bereikt"),
    2: ("not-eligible", "Voldoet niet aan de voorwaarden"),
    3: ("no-capacity", "Geen plaats"),
    4: ("no-longer-interested", "Patiënt heeft geen interesse meer"),
    5: ("referred-elsewhere", "Elders naartoe verwezen"),
}
ATTENDANCE = {1: "none", 2: "partial", 3: "full"}
ENROLMENT = {1: "enrolled", 2: "not-enrolled", 3: "not-enrolled-on-waitlist"}
CATEGORY = {1: "gli", 2: "physical-activity", 3: "nutrition", 4: "smoking-cessation",
            5: "stress-and-sleep", 6: "social-and-welfare", 7: "patient-education",
            8: "peer-support"}  # fmt: skip
FUNDING = {1: "basic-insurance", 2: "municipality", 3: "own-payment", 4: "supplementary-insurance"}
RECOGNITION = {1: "well-described", 2: "well-founded", 3: "effective-first-evidence",
               4: "effective-good-evidence", 5: "effective-strong-evidence"}  # fmt: skip
CAPACITY = {1: "no-capacity", 2: "capacity", 3: "waitlist", 4: "additional-assessment-required"}
DAYS = {"MO": "mon", "TU": "tue", "WE": "wed", "TH": "thu", "FR": "fri", "SA": "sat", "SU": "sun"}
ORG_TYPE = {1: "care-group", 2: "gp-practice", 3: "hospital", 4: "municipality",
            5: "lifestyle-provider", 6: "insurer"}  # fmt: skip
DATA_CATEGORY = {1: "referral", 2: "care-plan", 3: "measurements", 4: "patient-record",
                 5: "consent", 6: "access-log"}  # fmt: skip
CONSENT_STATUS = {1: "active", 2: "active", 3: "inactive", 4: "inactive"}
BASIS = {1: "self", 2: "care-relationship", 3: "care-relationship-and-consent",
         4: "referral-target", 5: "emergency", 6: "audit"}  # fmt: skip
AUDIT_ACTION = {1: ("R", "read"), 2: ("C", "create"), 3: ("U", "update")}
SEX = {1: "female", 2: "male", 3: "other"}
SOURCE_KIND = {1: "kis", 2: "lab", 3: "hospital", 4: "insurer-claims", 5: "lifestyle-provider",
               6: "patient"}  # fmt: skip
OBSERVATION_CATEGORY = {"HBA1C": "laboratory", "LDL": "laboratory", "NON_HDL": "laboratory",
                        "EGFR": "laboratory", "ACR": "laboratory", "SBP": "vital-signs",
                        "DBP": "vital-signs", "WEIGHT": "vital-signs", "BMI": "vital-signs",
                        "HEIGHT": "vital-signs", "WAIST": "vital-signs",
                        "SMOKING_STATUS": "social-history"}  # fmt: skip


# ------------------------------------------------------------------ helpers


def clean(value: Any) -> Any:
    """FHIR has no empty elements: drop None, "", [] and {} (recursively)."""
    if isinstance(value, dict):
        out = {k: clean(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        items = [clean(v) for v in value]
        return [v for v in items if v not in (None, "", [], {})]
    return value


def when(stamp: Timestamp) -> str | None:
    if not stamp.seconds and not stamp.nanos:
        return None
    moment = dt.datetime.fromtimestamp(stamp.seconds, dt.UTC).replace(
        microsecond=stamp.nanos // 1000
    )
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if stamp.nanos:
        text += f".{stamp.nanos // 1_000_000:03d}"
    return text + "Z"


def day(stamp: Timestamp) -> str | None:
    if not stamp.seconds and not stamp.nanos:
        return None
    return dt.datetime.fromtimestamp(stamp.seconds, dt.UTC).date().isoformat()


def tail(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def ref(kind: str, name: str) -> Json | None:
    return {"reference": f"{kind}/{tail(name)}"} if name else None


def local(system: str, code: str, display: str = "") -> Json:
    coding = {"system": f"{BASE}/CodeSystem/{system}", "code": code}
    return {"coding": [coding | ({"display": display} if display else {})]}


def same(found: Json, expected: Json) -> None:
    """``found`` is valid FHIR and equals ``expected`` (with its empty elements dropped)."""
    valid(found)
    assert found == clean(expected)


# ------------------------------------------------------------------ expected resources


def care_plan(plan: cp.CarePlan) -> Json:
    pid = plan.name.split("/")[1]
    activities: list[Json] = []
    for action in plan.actions:
        if action.referral:
            activities.append(
                {"reference": {"reference": f"ServiceRequest/{pid}.{tail(action.referral)}"}}
            )
        else:
            activities.append(
                {
                    "detail": {
                        "code": local("care-plan-action-kind", ACTION_KIND[action.kind]),
                        "status": ACTIVITY[action.status],
                        "description": action.description,
                        "performer": [ref("Organization", action.responsible_organisation)],
                        "scheduledString": action.schedule,
                        "goal": [{"reference": f"Goal/{pid}.{g}"} for g in action.goals],
                    }
                }
            )
    for moment in plan.evaluations:
        activities.append(
            {
                "outcomeCodeableConcept": [{"text": moment.outcome}],
                "detail": {
                    "kind": "Appointment",
                    "code": local("care-plan-action-kind", "evaluation"),
                    "status": "completed" if moment.outcome else "scheduled",
                    "description": "Evaluatiemoment",
                    "scheduledPeriod": {"start": when(moment.review_time)},
                    "performer": [ref("Organization", moment.organisation)],
                },
            }
        )
    conditions = [
        {
            "resourceType": "Condition",
            "id": f"condition-{n}",
            "subject": {"reference": f"Patient/{pid}"},
            "code": {
                "coding": [
                    {"system": CONDITION_SYSTEM[c.system], "code": c.code, "display": c.display}
                ]
                if c.code
                else [],
                "text": c.display,
            },
        }
        for n, c in enumerate(plan.conditions, start=1)
    ]
    prep = plan.consult_preparation
    return {
        "resourceType": "CarePlan",
        "id": pid,
        "meta": {"versionId": str(plan.version), "lastUpdated": when(plan.update_time)},
        "contained": conditions,
        "status": PLAN_STATUS[plan.status],
        "intent": "plan",
        "title": "Individueel zorgplan",
        "description": "\n".join(plan.what_matters),
        "subject": {"reference": f"Patient/{pid}"},
        "created": when(plan.create_time),
        "author": ref("Organization", plan.record_holder),
        "contributor": [ref("Organization", p.organisation) for p in plan.participants],
        "addresses": [{"reference": f"#condition-{n}"} for n in range(1, len(conditions) + 1)],
        "goal": [{"reference": f"Goal/{pid}.{g.id}"} for g in plan.goals],
        "activity": activities,
        "note": [{"text": f"Onderwerp voor het consult: {t}"} for t in prep.topics]
        + [{"text": f"Vraag voor het consult: {q}"} for q in prep.questions]
        + [{"text": f"Agenda: {a}"} for a in prep.agenda],
    }


def goal(pid: str, item: cp.Goal) -> Json:
    target = item.target
    detail: Json = {}
    unit = {"unit": target.unit} if target.unit else {}
    if target.HasField("low") and target.HasField("high"):
        detail = {
            "detailRange": {
                "low": {"value": target.low} | unit,
                "high": {"value": target.high} | unit,
            }
        }
    elif target.HasField("low"):
        detail = {"detailQuantity": {"value": target.low, "comparator": ">="} | unit}
    elif target.HasField("high"):
        detail = {"detailQuantity": {"value": target.high, "comparator": "<="} | unit}
    has_target = target.measure or detail or target.due_time.seconds
    owner = item.owner.split("/")
    return {
        "resourceType": "Goal",
        "id": f"{pid}.{item.id}",
        "lifecycleStatus": GOAL_LIFECYCLE[item.lifecycle_status],
        "achievementStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                    "code": ACHIEVEMENT[item.achievement_status],
                }
            ]
        }
        if item.achievement_status
        else None,
        "description": {"text": item.description},
        "subject": {"reference": f"Patient/{pid}"},
        "startDate": day(item.create_time),
        "target": [{"measure": {"text": target.measure}, **detail, "dueDate": day(target.due_time)}]
        if has_target
        else [],
        "expressedBy": {"reference": f"Patient/{owner[1]}"} if owner[0] == "patients" else None,
        "note": ([{"text": item.notes}] if item.notes else [])
        + [{"text": p.text, "time": when(p.record_time)} for p in item.progress],
    }


def service_request(referral: rf.Referral) -> Json:
    pid, rid = referral.name.split("/")[1], tail(referral.name)
    status = SERVICE_REQUEST.get(referral.status)
    if referral.status == rf.REFERRAL_STATUS_CANCELLED:
        by = [h.actor_organisation for h in referral.history if h.to_status == referral.status]
        status = "revoked" if by[-1] == referral.referrer_organisation else "active"
    return {
        "resourceType": "ServiceRequest",
        "id": f"{pid}.{rid}",
        "meta": {"lastUpdated": when(referral.update_time)},
        "identifier": [{"system": f"{BASE}/NamingSystem/referral", "value": referral.name}],
        "status": status,
        "intent": "order",
        "category": [local("referral-category", "lifestyle-and-social")],
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": when(referral.create_time),
        "requester": ref("Organization", referral.referrer_organisation),
        "performer": [ref("HealthcareService", referral.offer)],
        "reasonCode": [{"text": referral.reason}],
    }


def task(referral: rf.Referral) -> Json:
    pid, rid = referral.name.split("/")[1], tail(referral.name)
    business = BUSINESS.get(referral.business_status)
    reason = referral.status_reason or (business[1] if business else "")
    if not reason and referral.status in (4, 5, 7, 8):
        reason = "Geen reden opgegeven"
    business_status = (
        {"coding": local("referral-business-status", business[0])["coding"], "text": business[1]}
        if business
        else None
    )
    if not business and referral.enrolment == rf.ENROLMENT_NOT_ENROLLED_ON_WAITLIST:
        text = "Op de wachtlijst" + (
            f" (plaats {referral.waitlist_position})" if referral.waitlist_position else ""
        )
        business_status = {
            "coding": local("referral-business-status", "waitlisted")["coding"],
            "text": text,
        }
    outcome = referral.outcome
    output: list[Json] = []

    def add(code: str, **value: Any) -> None:
        output.append({"type": local("referral-feedback", code), **value})

    if outcome.attendance:
        add("attendance", valueCodeableConcept=local("attendance", ATTENDANCE[outcome.attendance]))
    if outcome.sessions_planned:
        add("sessions-attended", valueInteger=outcome.sessions_attended)
        add("sessions-planned", valueInteger=outcome.sessions_planned)
    if outcome.enrolment:
        add("enrolment", valueCodeableConcept=local("enrolment", ENROLMENT[outcome.enrolment]))
    if outcome.result_summary:
        add("result-summary", valueString=outcome.result_summary)
    for m in outcome.measurements:
        quantity = {"value": m.value} | (
            {"unit": m.unit, "system": UCUM, "code": m.unit} if m.unit else {}
        )
        add(f"measurement-{m.code.lower()}", valueQuantity=quantity)
    return {
        "resourceType": "Task",
        "id": f"{pid}.{rid}",
        "meta": {"lastUpdated": when(referral.update_time)},
        "status": TASK[referral.status],
        "statusReason": {"text": reason},
        "businessStatus": business_status,
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "focus": {"reference": f"ServiceRequest/{pid}.{rid}"},
        "for": {"reference": f"Patient/{pid}"},
        "authoredOn": when(referral.create_time),
        "lastModified": when(referral.update_time),
        "requester": ref("Organization", referral.referrer_organisation),
        "owner": ref("Organization", referral.target_organisation),
        "output": output,
    }


def healthcare_service(offer: rf.Offer) -> Json:
    def money(c: rf.CostOption) -> str:
        what = c.description or FUNDING[c.funding]
        amount = f"{c.amount_cents / 100:.2f} {c.currency or 'EUR'}" if c.amount_cents else ""
        return f"- {what}: {amount or 'geen kosten'}"

    capacity = offer.capacity
    return {
        "resourceType": "HealthcareService",
        "id": tail(offer.name),
        "meta": {"lastUpdated": when(offer.update_time)},
        "active": offer.state == rf.OFFER_STATE_LISTED,
        "providedBy": ref("Organization", offer.owner_organisation),
        "category": [local("offer-category", CATEGORY[offer.category])],
        "name": offer.display_name,
        "comment": offer.description,
        "extraDetails": "\n".join(money(c) for c in offer.cost_options),
        "telecom": [
            {"system": "phone", "value": offer.contact.phone},
            {"system": "email", "value": offer.contact.email},
            {"system": "url", "value": offer.contact.url},
        ],
        "characteristic": [local("recognition-level", RECOGNITION[offer.recognition.level])]
        if offer.recognition.level
        else [],
        "specialty": [{"text": c} for c in offer.target_conditions],
        "serviceProvisionCode": [local("funding", FUNDING[c.funding]) for c in offer.cost_options],
        "eligibility": [
            {
                "code": {"text": offer.eligibility_description or "Zie de voorwaarden"},
                "comment": offer.application_process,
            }
        ]
        if offer.eligibility_description or offer.application_process
        else [],
        "communication": [
            {"coding": [{"system": "urn:ietf:bcp:47", "code": lang}]} for lang in offer.languages
        ],
        "availableTime": [
            {
                "daysOfWeek": [DAYS[d] for d in s.byday],
                "availableStartTime": f"{s.opens_at}:00" if s.opens_at else None,
                "availableEndTime": f"{s.closes_at}:00" if s.closes_at else None,
            }
            for s in offer.schedules
        ],
        "availabilityExceptions": "; ".join(
            s.description for s in offer.schedules if s.description
        ),
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
                "SDOHCC-ExtensionHealthcareServiceCapacityStatus",
                "extension": [
                    {
                        "url": "capacityStatus",
                        "valueCodeableConcept": {
                            "coding": [
                                {
                                    "system": "http://hl7.org/fhir/us/sdoh-clinicalcare/"
                                    "CodeSystem/SDOHCC-CodeSystemTemporaryCodes",
                                    "code": CAPACITY[capacity.status],
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


def organization(org: id_pb.Organisation) -> Json:
    oid, group = tail(org.name), tail(org.care_group)
    identifiers = [
        (f"{BASE}/NamingSystem/organisation-id", oid),
        ("http://fhir.nl/fhir/NamingSystem/agb-z", org.agb_code),
        ("http://fhir.nl/fhir/NamingSystem/ura", org.ura),
        ("http://fhir.nl/fhir/NamingSystem/uzovi", org.uzovi),
        ("urn:oid:2.16.840.1.113883.2.4.6.14", org.cbs_municipality_code),
    ]
    return {
        "resourceType": "Organization",
        "id": oid,
        "meta": {"lastUpdated": when(org.update_time)},
        "identifier": [{"system": s, "value": v} for s, v in identifiers if v],
        "active": True,
        "type": [local("organisation-type", ORG_TYPE[org.type])],
        "name": org.display_name,
        "partOf": {"reference": f"Organization/{group}"} if group and group != oid else None,
    }


def patient(item: id_pb.Patient) -> Json:
    pid = tail(item.name)
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"lastUpdated": when(item.update_time)},
        "identifier": [{"system": f"{BASE}/NamingSystem/patient-id", "value": pid}],
        "active": True,
        "managingOrganization": ref("Organization", item.care_group),
    }


def selector(chosen: id_pb.OrganisationSelector) -> Json:
    if chosen.WhichOneof("selector") == "organisation":
        return {"reference": f"Organization/{tail(chosen.organisation)}"}
    kind = ORG_TYPE[chosen.category]
    return {
        "type": "Organization",
        "identifier": {"system": f"{BASE}/CodeSystem/organisation-type", "value": kind},
        "display": f"elke organisatie van het type {kind}",
    }


def consent(item: id_pb.Consent) -> Json:
    pid = item.name.split("/")[1]
    return {
        "resourceType": "Consent",
        "id": f"{pid}.{tail(item.name)}",
        "meta": {"lastUpdated": when(item.update_time)},
        "status": CONSENT_STATUS[item.state],
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IDSCL"}
                ]
            }
        ],
        "patient": {"reference": f"Patient/{pid}"},
        "dateTime": when(item.create_time),
        "organization": [selector(item.record_holder)],
        "policy": [{"uri": f"{BASE}/policy/consent"}],
        "provision": {
            "type": "permit",
            "period": {
                "start": when(item.start_time),
                "end": when(item.withdraw_time) or when(item.end_time),
            },
            "actor": [
                {
                    "role": {"coding": [{"system": PARTICIPATION, "code": "IRCP"}]},
                    "reference": selector(item.requester),
                }
            ],
            "class": [
                {
                    "system": f"{BASE}/CodeSystem/data-category",
                    "code": DATA_CATEGORY[item.data_category],
                }
            ],
            "purpose": [{"system": ACT_REASON, "code": "TREAT"}],
        },
    }


def audit_event(entry: id_pb.AccessLogEntry) -> Json:
    users = f"{BASE}/NamingSystem/user"
    purpose = "ETREAT" if entry.emergency else "TREAT"
    permitted = entry.decision == id_pb.DECISION_PERMIT
    category = DATA_CATEGORY[entry.data_category]
    agents: list[Json] = [
        {
            "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP"}]},
            "who": {"identifier": {"system": users, "value": entry.user}},
            "role": [{"text": r} for r in entry.roles],
            "requestor": True,
            "network": {"address": entry.access_point, "type": "5"} if entry.access_point else None,
            "purposeOfUse": [{"coding": [{"system": ACT_REASON, "code": purpose}]}],
        },
        {
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass", "code": "PROV"}
                ]
            },
            "who": ref("Organization", entry.organisation),
            "requestor": False,
        },
    ]
    if entry.responsible_user and entry.responsible_user != entry.user:
        agents.append(
            {
                "type": {"coding": [{"system": PARTICIPATION, "code": "RESP"}]},
                "who": {"identifier": {"system": users, "value": entry.responsible_user}},
                "requestor": False,
            }
        )
    details = [
        ("data-category", category),
        ("basis", BASIS.get(entry.basis, "")),
        ("purpose", entry.purpose),
        ("emergency-reason", entry.emergency_reason),
        ("sequence", str(entry.sequence)),
        ("entry-hash", entry.entry_hash),
    ]
    entity_type = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
    role = "http://terminology.hl7.org/CodeSystem/object-role"
    action, subtype = AUDIT_ACTION[entry.action]
    return {
        "resourceType": "AuditEvent",
        "id": tail(entry.name),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": subtype}],
        "action": action,
        "recorded": when(entry.event_time),
        "outcome": "0" if permitted else "4",
        "outcomeDesc": "" if permitted else entry.reason,
        "purposeOfEvent": [{"coding": [{"system": ACT_REASON, "code": purpose}]}],
        "agent": agents,
        "source": {
            "observer": {"display": "carenet identity"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                }
            ],
        },
        "entity": [
            {
                "what": {"reference": f"Patient/{tail(entry.patient)}"},
                "type": {"system": entity_type, "code": "1"},
                "role": {"system": role, "code": "1"},
            },
            {
                "type": {"system": entity_type, "code": "2"},
                "role": {"system": role, "code": "4"},
                "name": category,
                "description": entry.event,
                "detail": [{"type": k, "valueString": v} for k, v in details if v],
            },
        ],
    }


def observation(m: oc.Measurement, table: dict[str, oc.MeasurementCode]) -> Json:
    pid = m.name.split("/")[1]
    known = table[m.code]
    coding = [
        {"system": f"{BASE}/CodeSystem/measurement-code", "code": m.code, "display": known.display}
    ]
    if known.loinc_code:
        coding.insert(0, {"system": LOINC, "code": known.loinc_code, "display": known.display})
    return {
        "resourceType": "Observation",
        "id": f"{pid}.{tail(m.name)}",
        "meta": {"source": f"{BASE}/source/{SOURCE_KIND[m.source.kind]}"},
        "identifier": [
            {
                "system": f"{BASE}/NamingSystem/source-record/{tail(m.source.organisation)}",
                "value": m.source_record_id,
            }
        ],
        "status": "amended" if m.revisions else "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": OBSERVATION_CATEGORY.get(m.code, "survey"),
                    }
                ]
            }
        ],
        "code": {"coding": coding, "text": known.display},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when(m.measure_time),
        "issued": when(m.create_time),
        "performer": [
            {"reference": f"Patient/{pid}"}
            if m.source.kind == oc.SOURCE_KIND_PATIENT
            else ref("Organization", m.source.organisation)
        ],
        "valueQuantity": {"value": m.value, "unit": m.unit, "system": UCUM, "code": m.unit},
    }


def _numbers(cell: oc.ReportCell) -> Json:
    population = "http://terminology.hl7.org/CodeSystem/measure-population"
    hidden = cell.suppression in (oc.SUPPRESSION_PRIMARY, oc.SUPPRESSION_COMPLEMENTARY) or (
        not cell.HasField("values")
    )
    v = cell.values
    out: Json = {
        "population": [
            {"code": {"coding": [{"system": population, "code": code}]}}
            | ({"_count": MASKED} if hidden else {"count": count})
            for code, count in (
                ("denominator", v.denominator),
                ("denominator-exclusion", v.exclusions),
                ("numerator", v.numerator),
            )
        ]
    }
    if not hidden and v.HasField("score"):
        out["measureScore"] = (
            {"value": round(v.score.value, 4), "unit": "per 100 patiëntjaren"}
            if v.HasField("patient_years")
            else {"value": round(v.score.value, 4), "unit": "%", "system": UCUM, "code": "%"}
        )
    return out


def _why(cell: oc.ReportCell) -> list[Json]:
    texts = {
        oc.SUPPRESSION_PRIMARY: ("primary", "Kleine aantallen (1 t/m 9): niet getoond"),
        oc.SUPPRESSION_COMPLEMENTARY: (
            "complementary",
            "Niet getoond: anders is een kleine cel terug te rekenen",
        ),
    }
    if cell.suppression not in texts:
        return []
    code, text = texts[cell.suppression]
    return [
        {
            "url": f"{BASE}/StructureDefinition/suppression",
            "valueCodeableConcept": {"coding": local("suppression", code)["coding"], "text": text},
        }
    ]


def measure_report(report: oc.Report) -> Json:
    groups = []
    for indicator in sorted({c.indicator for c in report.cells}):
        cells = [c for c in report.cells if c.indicator == indicator]
        strata: dict[tuple[str, ...], list[Json]] = {}
        total: oc.ReportCell | None = None
        for cell in cells:
            dims: list[tuple[str, Json]] = []
            if cell.practice:
                dims.append(("practice", local("practice", tail(cell.practice))))
            if cell.age_band:
                dims.append(
                    ("age-band", local("age-band", cell.age_band) | {"text": cell.age_band})
                )
            if cell.sex:
                dims.append(
                    (
                        "sex",
                        {
                            "coding": [
                                {
                                    "system": "http://hl7.org/fhir/administrative-gender",
                                    "code": SEX[cell.sex],
                                }
                            ]
                        },
                    )
                )
            if cell.band:
                dims.append(("band", local("band", cell.band) | {"text": cell.band}))
            if not dims:
                total = cell
                continue
            stratum: Json = (
                {"value": dims[0][1]}
                if len(dims) == 1
                else {"component": [{"code": local("stratifier", k), "value": v} for k, v in dims]}
            )
            if _why(cell):
                stratum["extension"] = _why(cell)
            strata.setdefault(tuple(k for k, _ in dims), []).append(stratum | _numbers(cell))
        group: Json = {
            "code": {
                "coding": local("indicator", indicator)["coding"],
                "text": f"{indicator} (versie {cells[0].version})",
            },
            **(_numbers(total) if total is not None else {}),
            "stratifier": [
                {"code": [local("stratifier", k) for k in key], "stratum": found}
                for key, found in strata.items()
            ],
        }
        if total is not None and _why(total):
            group["extension"] = _why(total)
        groups.append(group)
    measure = f"contract-{tail(report.contract)}" if report.contract else "care-group"
    return {
        "resourceType": "MeasureReport",
        "id": tail(report.name),
        "meta": {"lastUpdated": when(report.create_time)},
        "identifier": [{"system": f"{BASE}/NamingSystem/report", "value": report.name}],
        "status": "complete",
        "type": "summary",
        "measure": f"{BASE}/Measure/{measure}",
        "date": when(report.create_time),
        "reporter": ref("Organization", report.care_group),
        "period": {"start": day(report.period_start), "end": day(report.period_end)},
        "group": groups,
    }


# ------------------------------------------------------------------ the generated world


class Grpc:
    """The gRPC APIs as a caller."""

    def __init__(self, fhir: FhirApi) -> None:
        self.fhir = fhir
        self.identity = id_grpc.IdentityServiceStub(fhir.channel("identity"))
        self.referral = rf_grpc.ReferralServiceStub(fhir.channel("referral"))
        self.careplan = cp_grpc.CarePlanServiceStub(fhir.channel("careplan"))
        self.outcomes = oc_grpc.OutcomesServiceStub(fhir.channel("outcomes"))

    def md(self, who: tuple[str, str]) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.fhir.token(*who)}"),)


@pytest.fixture(scope="module")
def world(fhir: FhirApi) -> World:
    return generate(fhir.token, fhir.platform.target, seed())


@pytest.fixture(scope="module")
def api(fhir: FhirApi) -> Grpc:
    return Grpc(fhir)


def pages(fhir: FhirApi, path: str, token: str, **params: Any) -> Iterator[Json]:
    """Every entry of a search, following its ``next`` links (each page valid)."""
    bundle = fhir.ok(path, token, **params)
    while True:
        valid(bundle)
        assert bundle["type"] == "searchset"
        yield from bundle.get("entry", [])
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            return
        response = fhir.get(following[0].removeprefix(fhir.base + "/"), token)
        assert response.status_code == 200, response.text
        bundle = response.json()


def matches(entries: Iterator[Json]) -> list[Json]:
    return [e["resource"] for e in entries if e["search"]["mode"] == "match"]


# ------------------------------------------------------------------ the round trip


def test_the_generated_data_covers_the_mappings(world: World) -> None:
    """The generated data reaches every referral status (so every Task and ServiceRequest
    status of the Gravity table) on generated patients, offers and a report."""
    assert world.statuses == set(TASK)
    assert len(world.patients) == 3 and len(world.offers) == 5 and world.report


def test_care_plans_and_goals(fhir: FhirApi, api: Grpc, world: World) -> None:
    token = fhir.token(*GP)
    seen_goal_states: set[str] = set()
    for pid in world.patients:
        plan = api.careplan.GetCarePlan(
            cp_rpc.GetCarePlanRequest(name=f"patients/{pid}/carePlan"), metadata=api.md(GP)
        )
        expected_plan = care_plan(plan)
        same(fhir.ok(f"CarePlan/{pid}", token), expected_plan)
        bundle = list(
            pages(fhir, "CarePlan", token, patient=f"Patient/{pid}", _include="CarePlan:goal")
        )
        assert [e["resource"]["resourceType"] for e in bundle] == ["CarePlan"] + ["Goal"] * len(
            plan.goals
        )
        assert bundle[0]["resource"] == clean(expected_plan)
        assert [e["fullUrl"] for e in bundle] == [
            f"{fhir.base}/CarePlan/{pid}",
            *(f"{fhir.base}/Goal/{pid}.{g.id}" for g in plan.goals),
        ]
        status = PLAN_STATUS[plan.status]
        assert matches(pages(fhir, "CarePlan", token, patient=pid, status=status)) == [
            clean(expected_plan)
        ]
        other = "active" if status != "active" else "draft"
        assert matches(pages(fhir, "CarePlan", token, patient=pid, status=other)) == []
        goals = [goal(pid, g) for g in plan.goals]
        assert [e["resource"] for e in bundle[1:]] == [clean(g) for g in goals]
        assert matches(pages(fhir, "Goal", token, patient=pid)) == [clean(g) for g in goals]
        for item, expected in zip(plan.goals, goals, strict=True):
            same(fhir.ok(f"Goal/{pid}.{item.id}", token), expected)
            assert expected["lifecycleStatus"] in GOAL_STATUS
            seen_goal_states.add(expected["lifecycleStatus"])
            if item.achievement_status:
                assert expected["achievementStatus"]["coding"][0]["code"] in GOAL_ACHIEVEMENT
        for activity in clean(expected_plan).get("activity", []):
            if "detail" in activity:
                assert activity["detail"]["status"] in CARE_PLAN_ACTIVITY_STATUS
    assert len(seen_goal_states) > 1


def test_referrals_are_service_requests_and_tasks(fhir: FhirApi, api: Grpc, world: World) -> None:
    token = fhir.token(*GP)
    statuses: set[tuple[str, str]] = set()
    for pid in world.patients:
        listed = api.referral.ListReferrals(
            rf_rpc.ListReferralsRequest(parent=f"patients/{pid}", page_size=100),
            metadata=api.md(GP),
        ).referrals
        assert sorted(r.name for r in listed) == sorted(world.referrals[pid])
        for referral in listed:
            got = api.referral.GetReferral(
                rf_rpc.GetReferralRequest(name=referral.name), metadata=api.md(GP)
            )
            inner = f"{pid}.{tail(referral.name)}"
            same(fhir.ok(f"Task/{inner}", token), task(got))
            same(fhir.ok(f"ServiceRequest/{inner}", token), service_request(got))
            expected_task, expected_request = clean(task(got)), clean(service_request(got))
            assert expected_task["status"] in GRAVITY_TASK_STATUS
            assert expected_request["status"] in REQUEST_STATUS
            statuses.add((expected_task["status"], expected_request["status"]))
        # the searches: two at a time, following the next links; Task:focus includes
        entries = list(pages(fhir, "Task", token, patient=pid, _count=2, _include="Task:focus"))
        found_tasks = [e["resource"] for e in entries if e["search"]["mode"] == "match"]
        found_requests = [e["resource"] for e in entries if e["search"]["mode"] == "include"]
        assert found_tasks == [clean(task(r)) for r in listed]
        assert found_requests == [clean(service_request(r)) for r in listed]
        assert matches(pages(fhir, "ServiceRequest", token, patient=pid, _count=3)) == [
            clean(service_request(r)) for r in listed
        ]
        for code in {TASK[r.status] for r in listed}:
            assert matches(pages(fhir, "Task", token, patient=pid, status=code)) == [
                clean(task(r)) for r in listed if TASK[r.status] == code
            ]
    # both cancellation sides and every Task status were met
    assert {s for s, _ in statuses} == set(TASK.values())
    assert {("cancelled", "revoked"), ("cancelled", "active")} & statuses


def test_offers_and_organisations(fhir: FhirApi, api: Grpc, world: World) -> None:
    token = fhir.token(*GP)
    for name in world.offers:
        offer = api.referral.GetOffer(rf_rpc.GetOfferRequest(name=name), metadata=api.md(GP))
        same(fhir.ok(f"HealthcareService/{tail(name)}", token), healthcare_service(offer))
    listed: list[rf.Offer] = []
    page = ""
    while True:
        reply = api.referral.ListOffers(
            rf_rpc.ListOffersRequest(
                page_size=3,
                page_token=page,
                state=rf.OFFER_STATE_LISTED,
                owner_organisation="organisations/gli-beweegfit",
            ),
            metadata=api.md(GP),
        )
        listed.extend(reply.offers)
        page = reply.next_page_token
        if not page:
            break
    found = matches(
        pages(fhir, "HealthcareService", token, organization="Organization/gli-beweegfit", _count=3)
    )
    assert found == [clean(healthcare_service(o)) for o in listed]
    assert {tail(n) for n in world.offers} <= {r["id"] for r in found}
    for org in (
        "cg-zuidoost",
        "gp-de-linde",
        "hosp-catharina",
        "gm-eindhoven",
        "gli-beweegfit",
        "ins-vgz",
    ):
        got = api.identity.GetOrganisation(
            id_rpc.GetOrganisationRequest(name=f"organisations/{org}"), metadata=api.md(GP)
        )
        same(fhir.ok(f"Organization/{org}", token), organization(got))


def test_patients_and_consents(fhir: FhirApi, api: Grpc, world: World) -> None:
    token = fhir.token(*GP)
    states: set[int] = set()
    for pid in world.patients:
        got = api.identity.GetPatient(
            id_rpc.GetPatientRequest(name=f"patients/{pid}"), metadata=api.md(GP)
        )
        resource = fhir.ok(f"Patient/{pid}", token)
        same(resource, patient(got))
        assert "bsn" not in str(resource).lower()
        consents = api.identity.ListConsents(
            id_rpc.ListConsentsRequest(parent=f"patients/{pid}", page_size=100), metadata=api.md(GP)
        ).consents
        assert matches(pages(fhir, "Consent", token, patient=pid, _count=2)) == [
            clean(consent(c)) for c in consents
        ]
        for item in consents:
            states.add(item.state)
            same(fhir.ok(f"Consent/{pid}.{tail(item.name)}", token), consent(item))
    assert id_pb.CONSENT_STATE_WITHDRAWN in states and id_pb.CONSENT_STATE_ACTIVE in states


def test_the_access_log_is_audit_events(fhir: FhirApi, api: Grpc, world: World) -> None:
    token = fhir.token(*AUDITOR)
    kinds: set[tuple[str, str]] = set()
    responsible: set[str] = set()
    for pid in world.patients:
        found = matches(pages(fhir, "AuditEvent", token, patient=pid, _count=25))
        # read after: the search itself is logged too, so the gRPC list holds more
        entries: list[id_pb.AccessLogEntry] = []
        page = ""
        while True:
            reply = api.identity.ListAccessLogEntries(
                id_rpc.ListAccessLogEntriesRequest(
                    patient=f"patients/{pid}", page_size=100, page_token=page
                ),
                metadata=api.md(AUDITOR),
            )
            entries.extend(reply.access_log_entries)
            page = reply.next_page_token
            if not page:
                break
        by_id = {tail(e.name): e for e in entries}
        assert found and {r["id"] for r in found} <= set(by_id)
        for resource in found:
            same(resource, audit_event(by_id[resource["id"]]))
            kinds.add((resource["action"], resource["outcome"]))
            responsible |= {
                a["type"]["coding"][0]["code"] for a in resource["agent"] if not a["requestor"]
            }
    # reads and creates, a refused read (outcome 4), a system acting for a person (RESP)
    assert {"R", "C"} <= {a for a, _ in kinds}
    assert ("R", "4") in kinds and ("R", "0") in kinds
    assert responsible == {"PROV", "RESP"}


def test_measurements_are_observations(fhir: FhirApi, api: Grpc, world: World) -> None:
    token = fhir.token(*GP)
    table = {
        c.code: c
        for c in api.outcomes.ListMeasurementCodes(
            oc_rpc.ListMeasurementCodesRequest(), metadata=api.md(GP)
        ).codes
    }
    statuses: set[str] = set()
    for pid in world.patients:
        listed = api.outcomes.ListMeasurements(
            oc_rpc.ListMeasurementsRequest(parent=f"patients/{pid}", page_size=100),
            metadata=api.md(GP),
        ).measurements
        found = matches(pages(fhir, "Observation", token, patient=pid, _count=4))
        assert found == [clean(observation(m, table)) for m in listed]
        statuses |= {r["status"] for r in found}
    assert statuses == {"final", "amended"}


def test_the_insurers_contract_report_is_its_measure_report(
    fhir: FhirApi, api: Grpc, world: World
) -> None:
    report = api.outcomes.GetReport(
        oc_rpc.GetReportRequest(name=world.contract_report), metadata=api.md(INSURER)
    )
    assert report.contract
    token = fhir.token(*INSURER)
    expected = measure_report(report)
    assert expected["measure"] == f"{BASE}/Measure/contract-{tail(report.contract)}"
    same(fhir.ok(f"MeasureReport/{tail(world.contract_report)}", token), expected)
    found = matches(pages(fhir, "MeasureReport", token, _count=2))
    assert clean(expected) in found


def test_the_report_is_a_measure_report_with_masked_strata(
    fhir: FhirApi, api: Grpc, world: World
) -> None:
    report = api.outcomes.GetReport(
        oc_rpc.GetReportRequest(name=world.report), metadata=api.md(ADMIN)
    )
    resource = fhir.ok(f"MeasureReport/{tail(world.report)}", fhir.token(*ADMIN))
    same(resource, measure_report(report))
    strata = [s for g in resource["group"] for k in g.get("stratifier", []) for s in k["stratum"]]
    hidden = [s for s in strata if "extension" in s]
    shown = [s for s in strata if "extension" not in s]
    assert hidden and shown, "the report has suppressed and shown cells"
    for stratum in hidden:
        assert "measureScore" not in stratum
        assert all("count" not in p and p["_count"] == MASKED for p in stratum["population"])
    suppressed = sum(
        1
        for c in report.cells
        if c.suppression in (oc.SUPPRESSION_PRIMARY, oc.SUPPRESSION_COMPLEMENTARY)
        and (c.practice or c.age_band or c.sex or c.band)
    )
    assert len(hidden) == suppressed


def test_a_refused_read_is_the_same_refusal(fhir: FhirApi, api: Grpc, world: World) -> None:
    """Another practice's GP (no care relationship with the generated patients) is refused
    their care plans with the reason careplan gives."""
    other = ("carenet-kis", "dr.devries")
    pid = world.patients[0]
    with pytest.raises(grpc.RpcError) as raised:
        api.careplan.GetCarePlan(
            cp_rpc.GetCarePlanRequest(name=f"patients/{pid}/carePlan"), metadata=api.md(other)
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    response = fhir.get(f"CarePlan/{pid}", fhir.token(*other))
    assert response.status_code == 403
    assert pid not in response.text

"""CarePlan and Goal from careplan's individual care plan (shared/fhir.md section 3)."""

from __future__ import annotations

from carenet.careplan.v1 import careplan_pb2 as pb
from fhir_api.resources.common import (
    Codes,
    Json,
    date,
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

GOAL_ACHIEVEMENT = "http://terminology.hl7.org/CodeSystem/goal-achievement"

# CarePlanStatus -> R4 RequestStatus (the same codes)
PLAN_STATUS = {
    value.number: enum_code(value.name, "CARE_PLAN_STATUS_")
    for value in pb.CarePlanStatus.DESCRIPTOR.values
    if value.number
}
GOAL_LIFECYCLE = {
    value.number: enum_code(value.name, "GOAL_LIFECYCLE_STATUS_")
    for value in pb.GoalLifecycleStatus.DESCRIPTOR.values
    if value.number
}
GOAL_ACHIEVEMENT_CODES = {
    value.number: enum_code(value.name, "GOAL_ACHIEVEMENT_STATUS_")
    for value in pb.GoalAchievementStatus.DESCRIPTOR.values
    if value.number
}
# ActivityStatus -> R4 CarePlanActivityStatus (the same codes)
ACTIVITY_STATUS = {
    value.number: enum_code(value.name, "ACTIVITY_STATUS_")
    for value in pb.ActivityStatus.DESCRIPTOR.values
    if value.number
}


# The condition code systems careplan records by name, as FHIR system URIs. The ICPC-1
# (Dutch) URI is Nictiz's; unconfirmed in shared/fhir.md. A name not listed here and not
# a URI is left out of the coding (the text keeps the condition).
CODE_SYSTEMS = {
    "ICPC-1": "http://hl7.org/fhir/sid/icpc-1-nl",
    "ICPC": "http://hl7.org/fhir/sid/icpc-1-nl",
    "SNOMED": "http://snomed.info/sct",
    "SNOMED-CT": "http://snomed.info/sct",
    "ICD-10": "http://hl7.org/fhir/sid/icd-10",
    "LOINC": "http://loinc.org",
}


def code_system(name: str) -> str:
    """The FHIR system URI of a code system careplan names; ``""`` when none is known."""
    if name.upper() in CODE_SYSTEMS:
        return CODE_SYSTEMS[name.upper()]
    return name if name.startswith(("http://", "https://", "urn:")) else ""


def plan_id(plan: pb.CarePlan) -> str:
    """One plan per patient: the CarePlan's id is the patient's id."""
    return segment(plan.name, "patients")


def goal_id(patient_id: str, goal: pb.Goal) -> str:
    return inner_id(patient_id, goal.id)


def care_plan(plan: pb.CarePlan, codes: Codes) -> Json:
    patient_id = plan_id(plan)
    contained = [
        {
            "resourceType": "Condition",
            "id": f"condition-{index}",
            "subject": patient_ref(patient_id),
            "code": {
                "coding": [{"system": code_system(c.system), "code": c.code, "display": c.display}]
                if code_system(c.system) and c.code
                else [],
                "text": c.display,
            },
        }
        for index, c in enumerate(plan.conditions, start=1)
    ]
    activities: list[Json] = []
    for action in plan.actions:
        if action.referral:
            # A referral is served as a ServiceRequest; the activity points at it.
            referral_id = last_segment(action.referral)
            activities.append(
                {"reference": reference("ServiceRequest", inner_id(patient_id, referral_id))}
            )
            continue
        activities.append(
            {
                "detail": {
                    "code": codes.concept(
                        "care-plan-action-kind",
                        enum_code(pb.ActionKind.Name(action.kind), "ACTION_KIND_"),
                    ),
                    "status": ACTIVITY_STATUS.get(action.status, "unknown"),
                    "description": action.description,
                    "performer": [organisation_ref(action.responsible_organisation)],
                    "scheduledString": action.schedule,
                    "goal": [reference("Goal", inner_id(patient_id, g)) for g in action.goals],
                }
            }
        )
    for moment in plan.evaluations:
        activities.append(
            {
                "outcomeCodeableConcept": [{"text": moment.outcome}] if moment.outcome else [],
                "detail": {
                    "kind": "Appointment",
                    "code": codes.concept("care-plan-action-kind", "evaluation"),
                    "status": "completed" if moment.outcome else "scheduled",
                    "description": "Evaluatiemoment",
                    "scheduledPeriod": {"start": instant(moment.review_time)},
                    "performer": [organisation_ref(moment.organisation)],
                },
            }
        )
    prep = plan.consult_preparation
    notes = [
        *({"text": f"Onderwerp voor het consult: {t}"} for t in prep.topics),
        *({"text": f"Vraag voor het consult: {q}"} for q in prep.questions),
        *({"text": f"Agenda: {a}"} for a in prep.agenda),
    ]
    contributors = [organisation_ref(p.organisation) for p in plan.participants]
    resource: Json = {
        "resourceType": "CarePlan",
        "id": patient_id,
        "meta": {"versionId": str(plan.version), "lastUpdated": instant(plan.update_time)},
        "contained": contained,
        "status": PLAN_STATUS.get(plan.status, "unknown"),
        "intent": "plan",
        "title": "Individueel zorgplan",
        # What matters to the patient, in their own words.
        "description": "\n".join(plan.what_matters),
        "subject": patient_ref(patient_id),
        "created": instant(plan.create_time),
        "author": organisation_ref(plan.record_holder),
        "contributor": contributors,
        "addresses": [{"reference": f"#{c['id']}"} for c in contained],
        "goal": [reference("Goal", goal_id(patient_id, g)) for g in plan.goals],
        "activity": activities,
        "note": notes,
    }
    return drop_empty(resource)


def goal(plan: pb.CarePlan, item: pb.Goal) -> Json:
    patient_id = plan_id(plan)
    target = item.target
    target_json: Json = {}
    if (
        target.measure
        or target.HasField("low")
        or target.HasField("high")
        or target.due_time.seconds
    ):
        quantity = {"unit": target.unit} if target.unit else {}
        if target.HasField("low") and target.HasField("high"):
            detail: Json = {
                "detailRange": {
                    "low": {"value": target.low, **quantity},
                    "high": {"value": target.high, **quantity},
                }
            }
        elif target.HasField("low") or target.HasField("high"):
            bound = target.low if target.HasField("low") else target.high
            comparator = ">=" if target.HasField("low") else "<="
            detail = {"detailQuantity": {"value": bound, "comparator": comparator, **quantity}}
        else:
            detail = {}
        target_json = {
            "measure": {"text": target.measure},
            **detail,
            "dueDate": date(target.due_time),
        }
    owner_patient = segment(item.owner, "patients")
    resource: Json = {
        "resourceType": "Goal",
        "id": goal_id(patient_id, item),
        "lifecycleStatus": GOAL_LIFECYCLE.get(item.lifecycle_status, "proposed"),
        "achievementStatus": {
            "coding": [
                {
                    "system": GOAL_ACHIEVEMENT,
                    "code": GOAL_ACHIEVEMENT_CODES[item.achievement_status],
                }
            ]
        }
        if item.achievement_status in GOAL_ACHIEVEMENT_CODES
        else None,
        "description": {"text": item.description},
        "subject": patient_ref(patient_id),
        "startDate": date(item.create_time),
        "target": [target_json],
        # Goal.expressedBy names a person; a goal an organisation owns has none.
        "expressedBy": patient_ref(owner_patient) if owner_patient else None,
        "note": [
            {"text": item.notes} if item.notes else {},
            *({"text": entry.text, "time": instant(entry.record_time)} for entry in item.progress),
        ],
    }
    return drop_empty(resource)

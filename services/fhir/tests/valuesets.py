"""The R4 (4.0.1) value sets the mappings bind to, and validation against the R4B models.

fhir.resources checks structure and datatypes, not required bindings: the code lists below
are R4's, checked by the tests themselves.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

# http://hl7.org/fhir/ValueSet/task-status minus ready and received (Gravity's
# SDOHCC-ValueSetReferralTaskStatus)
GRAVITY_TASK_STATUS = frozenset(
    {
        "draft", "requested", "accepted", "rejected", "cancelled", "in-progress",
        "on-hold", "failed", "completed", "entered-in-error",
    }
)  # fmt: skip
REQUEST_STATUS = frozenset(
    {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
)
GOAL_STATUS = frozenset(
    {
        "proposed", "planned", "accepted", "active", "on-hold", "completed", "cancelled",
        "entered-in-error", "rejected",
    }
)  # fmt: skip
GOAL_ACHIEVEMENT = frozenset(
    {
        "in-progress", "improving", "worsening", "no-change", "achieved", "sustaining",
        "not-achieved", "no-progress", "not-attainable",
    }
)  # fmt: skip
CARE_PLAN_ACTIVITY_STATUS = frozenset(
    {
        "not-started", "scheduled", "in-progress", "on-hold", "completed", "cancelled",
        "stopped", "unknown", "entered-in-error",
    }
)  # fmt: skip
CONSENT_STATE = frozenset(
    {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}
)
AUDIT_ACTION = frozenset({"C", "R", "U", "D", "E"})
AUDIT_OUTCOME = frozenset({"0", "4", "8", "12"})
OBSERVATION_STATUS = frozenset(
    {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
     "entered-in-error", "unknown"}
)  # fmt: skip
OBSERVATION_CATEGORY = frozenset(
    {"social-history", "vital-signs", "imaging", "laboratory", "procedure", "survey", "exam",
     "therapy", "activity"}
)  # fmt: skip
ADMINISTRATIVE_GENDER = frozenset({"male", "female", "other", "unknown"})
MEASURE_POPULATION = frozenset(
    {
        "initial-population", "numerator", "numerator-exclusion", "denominator",
        "denominator-exclusion", "denominator-exception", "measure-population",
        "measure-population-exclusion", "measure-observation",
    }
)  # fmt: skip
DAYS_OF_WEEK = frozenset({"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
GRAVITY_CAPACITY = frozenset(
    {"no-capacity", "capacity", "waitlist", "additional-assessment-required"}
)


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` after checking it against its FHIR model (raises when invalid)."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    for contained in resource.get("contained", []):
        valid(contained)
    return resource

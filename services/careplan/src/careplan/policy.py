"""Who may write which part of a care plan: the write-rule table, per field group.

Access to the plan as a whole (read, update) is decided by identity's ``Authorize`` (care
relationship plus consent for the care-plan data category). Within an update that identity
permitted, this table decides per field group, from the caller's role on the plan:

| field group (update_mask path)                     | patient | informal carer | professional | coordinating practitioner |
|----------------------------------------------------|---------|----------------|--------------|---------------------------|
| what_matters                                       | all     | -              | -            | -                         |
| conditions                                         | -       | -              | -            | all                       |
| participants                                       | -       | -              | -            | all                       |
| informal_carers (the patient's mandates)           | all     | -              | -            | -                         |
| goals (without their progress entries)             | own     | -              | own          | own                       |
| goals.progress (append only)                       | all     | all            | own          | own                       |
| actions                                            | -       | -              | own          | own                       |
| evaluations                                        | -       | -              | -            | all                       |
| consult_preparation.topics / .questions            | all     | -              | -            | -                         |
| consult_preparation.agenda / .next_consult_time    | all     | -              | -            | all                       |
| status                                             | -       | -              | -            | all                       |

``all``: any item of the group; ``own``: only items the caller owns (a goal whose owner is
the patient, or the caller's organisation; an action whose responsible organisation is the
caller's); ``-``: refused with PERMISSION_DENIED ``FIELD_GROUP_NOT_WRITABLE``. Touching an
item one does not own gives ``GOAL_NOT_OWNED`` or ``ACTION_NOT_OWN_ORGANISATION``.

Roles on a plan:
- **patient**: the plan's own patient (token ``carenet_patient``);
- **informal carer**: a user (token ``sub``) the patient listed in ``informal_carers``;
  they read everything and write progress entries;
- **coordinating practitioner**: a professional of the organisation holding the plan
  (the record holder, which created it);
- **professional**: a user with a care role of any other organisation.

The mask path ``consult_preparation`` means both of its groups; ``goals`` does not include
``goals.progress``.
"""

from __future__ import annotations

import enum

from careplan import errors
from careplan.models import PlanContent
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument

CARE_ROLES = frozenset(
    {"gp", "practice-nurse", "specialist", "sport-coach", "municipality-officer", "provider"}
)
# Who may create a plan: a clinician of the (future) coordinating practice.
CREATE_ROLES = frozenset({"gp", "practice-nurse"})


class Role(enum.StrEnum):
    PATIENT = "patient"
    INFORMAL_CARER = "informal-carer"
    PROFESSIONAL = "professional"
    COORDINATING_PRACTITIONER = "coordinating-practitioner"
    NONE = "none"


class FieldGroup(enum.StrEnum):
    WHAT_MATTERS = "what_matters"
    CONDITIONS = "conditions"
    PARTICIPANTS = "participants"
    INFORMAL_CARERS = "informal_carers"
    GOALS = "goals"
    GOAL_PROGRESS = "goals.progress"
    ACTIONS = "actions"
    EVALUATIONS = "evaluations"
    CONSULT_PREPARATION = "consult_preparation.topics"
    CONSULT_AGENDA = "consult_preparation.agenda"
    STATUS = "status"


class Scope(enum.StrEnum):
    ALL = "all"
    OWN = "own"


P, C, PRO, COORD = (
    Role.PATIENT,
    Role.INFORMAL_CARER,
    Role.PROFESSIONAL,
    Role.COORDINATING_PRACTITIONER,
)
ALL, OWN = Scope.ALL, Scope.OWN

WRITE_RULES: dict[FieldGroup, dict[Role, Scope]] = {
    FieldGroup.WHAT_MATTERS: {P: ALL},
    FieldGroup.CONDITIONS: {COORD: ALL},
    FieldGroup.PARTICIPANTS: {COORD: ALL},
    FieldGroup.INFORMAL_CARERS: {P: ALL},
    FieldGroup.GOALS: {P: OWN, PRO: OWN, COORD: OWN},
    FieldGroup.GOAL_PROGRESS: {P: ALL, C: ALL, PRO: OWN, COORD: OWN},
    FieldGroup.ACTIONS: {PRO: OWN, COORD: OWN},
    FieldGroup.EVALUATIONS: {COORD: ALL},
    FieldGroup.CONSULT_PREPARATION: {P: ALL},
    FieldGroup.CONSULT_AGENDA: {P: ALL, COORD: ALL},
    FieldGroup.STATUS: {COORD: ALL},
}

MASK_PATHS: dict[str, tuple[FieldGroup, ...]] = {
    "what_matters": (FieldGroup.WHAT_MATTERS,),
    "conditions": (FieldGroup.CONDITIONS,),
    "participants": (FieldGroup.PARTICIPANTS,),
    "informal_carers": (FieldGroup.INFORMAL_CARERS,),
    "goals": (FieldGroup.GOALS,),
    "goals.progress": (FieldGroup.GOAL_PROGRESS,),
    "actions": (FieldGroup.ACTIONS,),
    "evaluations": (FieldGroup.EVALUATIONS,),
    "consult_preparation": (FieldGroup.CONSULT_PREPARATION, FieldGroup.CONSULT_AGENDA),
    "consult_preparation.topics": (FieldGroup.CONSULT_PREPARATION,),
    "consult_preparation.questions": (FieldGroup.CONSULT_PREPARATION,),
    "consult_preparation.agenda": (FieldGroup.CONSULT_AGENDA,),
    "consult_preparation.next_consult_time": (FieldGroup.CONSULT_AGENDA,),
    "status": (FieldGroup.STATUS,),
}


def groups_of_mask(paths: list[str]) -> list[FieldGroup]:
    """The field groups an update mask names, in table order; unknown paths are refused."""
    if not paths:
        raise InvalidArgument.single(
            "update_mask", "name at least one field", "UPDATE_MASK_REQUIRED"
        )
    unknown = [p for p in paths if p not in MASK_PATHS]
    if unknown:
        raise InvalidArgument.single(
            "update_mask", f"cannot update {', '.join(sorted(unknown))}", "FIELD_NOT_UPDATABLE"
        )
    named = {g for p in paths for g in MASK_PATHS[p]}
    return [g for g in FieldGroup if g in named]


def role_on(
    principal: Principal, patient_id: str, record_holder_id: str, plan: PlanContent | None
) -> Role:
    """The caller's role on the plan of ``patient_id`` (NONE if they have none)."""
    if principal.is_patient and principal.patient == f"patients/{patient_id}":
        return Role.PATIENT
    if plan is not None and plan.mandates(principal.subject):
        return Role.INFORMAL_CARER
    if principal.roles & CARE_ROLES and principal.organisation:
        if principal.organisation == f"organisations/{record_holder_id}":
            return Role.COORDINATING_PRACTITIONER
        return Role.PROFESSIONAL
    return Role.NONE


def scope(role: Role, group: FieldGroup) -> Scope | None:
    return WRITE_RULES[group].get(role)


def require_writable(role: Role, groups: list[FieldGroup]) -> dict[FieldGroup, Scope]:
    """The scope of each group for ``role``; PERMISSION_DENIED for the first it may not write."""
    scopes: dict[FieldGroup, Scope] = {}
    for group in groups:
        granted = scope(role, group)
        if granted is None:
            raise errors.FieldGroupNotWritable(
                f"a caller in the role {role.value} may not write {group.value}",
                metadata={"field_group": group.value, "role": role.value},
            )
        scopes[group] = granted
    return scopes

"""The write-rule table (careplan.policy), per role and per field group, allowed and
refused, on the real server with real tokens and identity's real decisions."""

from __future__ import annotations

import itertools

import grpc
import pytest

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from careplan.policy import WRITE_RULES, FieldGroup, Role
from testkit.rpc import failure

from .conftest import Users, get, ts, update

ROLES = [Role.PATIENT, Role.INFORMAL_CARER, Role.PROFESSIONAL, Role.COORDINATING_PRACTITIONER]
ORG = {Role.PROFESSIONAL: "hosp-catharina", Role.COORDINATING_PRACTITIONER: "gp-de-linde"}
# The goal each role owns, or may write progress on.
OWN_GOAL = {
    Role.PATIENT: "walk",
    Role.INFORMAL_CARER: "walk",
    Role.PROFESSIONAL: "lung",
    Role.COORDINATING_PRACTITIONER: "hba1c",
}
counter = itertools.count()


def token_of(users: Users, role: Role) -> str:
    return {
        Role.PATIENT: users.patient,
        Role.INFORMAL_CARER: users.carer,
        Role.PROFESSIONAL: users.specialist,
        Role.COORDINATING_PRACTITIONER: users.gp,
    }[role]


def change(plan: pb.CarePlan, group: FieldGroup, role: Role) -> str:
    """Makes a valid change to ``group`` in ``plan``; returns the mask path."""
    n = next(counter)
    owner = (
        "patients/p-0001"
        if role in (Role.PATIENT, Role.INFORMAL_CARER)
        else f"organisations/{ORG[role]}"
    )
    if group is FieldGroup.WHAT_MATTERS:
        plan.what_matters.append(f"Wat ertoe doet {n}")
    elif group is FieldGroup.CONDITIONS:
        plan.conditions.add(code="R96", system="ICPC-1", display=f"Astma {n}")
    elif group is FieldGroup.PARTICIPANTS:
        plan.participants.add(
            role=pb.PARTICIPANT_ROLE_MUNICIPALITY, organisation="organisations/gm-eindhoven"
        )
    elif group is FieldGroup.INFORMAL_CARERS:
        pass  # restating the mandate is a write of the group
    elif group is FieldGroup.GOALS:
        plan.goals.add(
            description=f"Doel {n}", owner=owner, lifecycle_status=pb.GOAL_LIFECYCLE_STATUS_PROPOSED
        )
    elif group is FieldGroup.GOAL_PROGRESS:
        goal = next(g for g in plan.goals if g.id == OWN_GOAL[role])
        goal.progress.add(
            text=f"Voortgang {n}", achievement_status=pb.GOAL_ACHIEVEMENT_STATUS_IMPROVING
        )
    elif group is FieldGroup.ACTIONS:
        plan.actions.add(
            description=f"Actie {n}",
            kind=pb.ACTION_KIND_CONSULT,
            responsible_organisation=f"organisations/{ORG.get(role, 'gp-de-linde')}",
        )
    elif group is FieldGroup.EVALUATIONS:
        plan.evaluations.add(review_time=ts(30 + n))
    elif group is FieldGroup.CONSULT_PREPARATION:
        plan.consult_preparation.questions.append(f"Vraag {n}")
    elif group is FieldGroup.CONSULT_AGENDA:
        plan.consult_preparation.agenda.append(f"Agendapunt {n}")
    elif group is FieldGroup.STATUS:
        plan.status = pb.CARE_PLAN_STATUS_ACTIVE
    return group.value


@pytest.mark.parametrize("group", list(FieldGroup), ids=lambda g: g.value)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_a_role_writes_exactly_the_field_groups_the_table_gives_it(
    stub: rpc_grpc.CarePlanServiceStub,
    users: Users,
    plan_p1: pb.CarePlan,
    role: Role,
    group: FieldGroup,
) -> None:
    token = token_of(users, role)
    plan = get(stub, token)
    path = change(plan, group, role)
    if role in WRITE_RULES[group]:
        written = update(stub, token, plan, path)
        assert written.version == plan.version + 1
        assert written == get(stub, token, version=written.version)
    else:
        with pytest.raises(grpc.RpcError) as caught:
            update(stub, token, plan, path)
        fail = failure(caught.value)
        assert (fail.code, fail.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "FIELD_GROUP_NOT_WRITABLE",
        )
        assert get(stub, token).version == plan.version


def _refused(stub: rpc_grpc.CarePlanServiceStub, token: str, plan: pb.CarePlan, path: str) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        update(stub, token, plan, path)
    fail = failure(caught.value)
    assert fail.code == grpc.StatusCode.PERMISSION_DENIED
    return fail.reason


def test_the_patient_cannot_change_the_practices_goal(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    plan = get(stub, users.patient)
    next(g for g in plan.goals if g.id == "hba1c").description = "HbA1c onder 60"
    assert _refused(stub, users.patient, plan, "goals") == "GOAL_NOT_OWNED"


def test_the_practice_cannot_change_the_patients_goal(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    plan = get(stub, users.gp)
    next(g for g in plan.goals if g.id == "walk").description = "Elke dag een uur wandelen"
    assert _refused(stub, users.gp, plan, "goals") == "GOAL_NOT_OWNED"


def test_the_hospital_cannot_change_the_practices_action(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    plan = get(stub, users.specialist)
    next(a for a in plan.actions if a.id == "gli").description = "Iets anders"
    assert _refused(stub, users.specialist, plan, "actions") == "ACTION_NOT_OWN_ORGANISATION"


def test_the_hospital_changes_its_own_action(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    plan = get(stub, users.specialist)
    next(a for a in plan.actions if a.id == "scan").status = pb.ACTIVITY_STATUS_SCHEDULED
    written = update(stub, users.specialist, plan, "actions")
    assert next(a for a in written.actions if a.id == "scan").status == pb.ACTIVITY_STATUS_SCHEDULED


def test_the_hospital_cannot_write_progress_on_the_patients_goal(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    plan = get(stub, users.specialist)
    next(g for g in plan.goals if g.id == "walk").progress.add(text="Gezien op de poli")
    assert _refused(stub, users.specialist, plan, "goals.progress") == "GOAL_NOT_OWNED"


def test_the_carers_progress_entry_carries_the_carer_as_author(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    plan = get(stub, users.carer)
    next(g for g in plan.goals if g.id == "hba1c").progress.add(text="Samen gekookt zonder suiker")
    written = update(stub, users.carer, plan, "goals.progress")
    entry = next(g for g in written.goals if g.id == "hba1c").progress[-1]
    assert (entry.text, entry.author) == ("Samen gekookt zonder suiker", users.carer_sub)

"""Minimisation on the real server with real tokens and identity's real decisions: the
lifestyle provider (coach.degroot of BeweegFit, which p-0001's consent lets read the plan)
sees its part of p-0001's plan; its whole-list update keeps the items it cannot see; an item
it cannot see answers like one that does not exist; revisions tell it nothing its part does
not; the GP, the hospital's specialist and the patient still see the whole plan."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf import field_mask_pb2

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from testkit.fixtures import Tokens, bearer
from testkit.rpc import Failure, failure

from .conftest import P1, Users, get, update
from .support import AccessLog

PATIENT = "patients/p-0001"
PROVIDER = "organisations/gli-beweegfit"
# The coach's own action, serving the patient's goal "walk", and its own goal.
COACH_ACTION = "min-beweegfit-walk"
COACH_GOAL = "min-fietsen"


@pytest.fixture(scope="module")
def coach(tokens: Tokens) -> str:
    return tokens.user("coach.degroot")


def _refusal(call: Callable[[], object]) -> Failure:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return failure(caught.value)


@pytest.fixture(scope="module")
def coach_wrote(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, coach: str, plan_p1: pb.CarePlan
) -> pb.CarePlan:
    """The coach adds its action for the walking goal (one item), then sends back its part
    of the goals with one goal of its own added (the whole list); the plan as answered."""
    before = get(stub, coach)
    with_action: pb.CarePlan = stub.CreateAction(
        rpc.CreateActionRequest(
            parent=P1,
            action=pb.Action(
                id=COACH_ACTION,
                description="Wandelgroep twee keer per week",
                kind=pb.ACTION_KIND_CONSULT,
                responsible_person="coach De Groot",
                goals=["walk"],
            ),
            etag=before.etag,
        ),
        metadata=bearer(coach),
        timeout=10,
    )
    part = get(stub, coach)
    assert part.etag == with_action.etag
    # What the coach sees of the goals: the walking goal its action serves, nothing else.
    assert [g.id for g in part.goals] == ["walk"]
    sent = pb.CarePlan(name=P1, etag=part.etag)
    sent.goals.extend(part.goals)
    sent.goals.add(id=COACH_GOAL, description="Op de fiets naar de training", owner=PROVIDER)
    return update(stub, coach, sent, "goals")


def test_the_provider_sees_only_its_part_of_the_plan(
    stub: rpc_grpc.CarePlanServiceStub,
    identity_stub: id_grpc.IdentityServiceStub,
    tokens: Tokens,
    users: Users,
    coach: str,
    coach_wrote: pb.CarePlan,
) -> None:
    log = AccessLog(identity_stub, tokens.user("auditor.dekker"))
    logged = log.around(PATIENT, lambda: get(stub, coach))
    assert logged.error is None
    part: pb.CarePlan = logged.result
    whole = get(stub, users.gp)
    # The access is logged once, as the read it was; the version is the plan's.
    assert [(e.action, e.decision) for e in logged.entries] == [
        (id_pb.ACTION_READ, id_pb.DECISION_PERMIT)
    ]
    assert (part.etag, part.name, part.status) == (whole.etag, whole.name, whole.status)
    assert list(part.what_matters) == list(whole.what_matters)
    # Its goals and actions, the goals they serve; not the practice's or the hospital's.
    assert {g.id for g in part.goals} == {"walk", COACH_GOAL}
    assert {"hba1c", "lung"} <= {g.id for g in whole.goals}
    assert [a.id for a in part.actions] == [COACH_ACTION]
    assert part.actions[0].responsible_person == "coach De Groot"
    assert {"gli", "scan"} <= {a.id for a in whole.actions}
    # Which organisations take part, not the persons of others; no diagnoses, no carers,
    # no consult preparation, no evaluation moment it takes no part in.
    assert {p.organisation for p in part.participants} == {
        p.organisation for p in whole.participants
    }
    assert all(not p.persons for p in part.participants if p.organisation != PROVIDER)
    assert not part.conditions and whole.conditions
    assert all(not g.addresses for g in part.goals)
    assert not part.informal_carers and whole.informal_carers
    assert not part.evaluations and whole.evaluations
    assert part.consult_preparation == pb.ConsultPreparation()


def test_the_providers_whole_list_update_keeps_the_goals_it_cannot_see(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, coach: str, coach_wrote: pb.CarePlan
) -> None:
    # The answer is the coach's part of the plan as written.
    assert {g.id for g in coach_wrote.goals} == {"walk", COACH_GOAL}
    whole = get(stub, users.gp)
    assert whole.etag == coach_wrote.etag
    goals = {g.id: g for g in whole.goals}
    assert goals["lung"].owner == "organisations/hosp-catharina"
    assert goals["lung"].description == "Minder kortademig"
    assert goals["hba1c"].owner == "organisations/gp-de-linde"
    assert goals[COACH_GOAL].owner == PROVIDER
    assert {"gli", "scan", COACH_ACTION} <= {a.id for a in whole.actions}


def _item_refusals(
    stub: rpc_grpc.CarePlanServiceStub, coach: str, goal_id: str, etag: str
) -> list[Failure]:
    name = f"{P1}/goals/{goal_id}"
    change = rpc.UpdateGoalRequest(
        name=name,
        goal=pb.Goal(description="Geraden"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        etag=etag,
    )
    progress = pb.CarePlan(name=P1, etag=etag)
    progress.goals.add(id=goal_id).progress.add(text="Geraden")
    return [
        _refusal(lambda: stub.UpdateGoal(change, metadata=bearer(coach), timeout=10)),
        _refusal(
            lambda: stub.DeleteGoal(
                rpc.DeleteGoalRequest(name=name, etag=etag), metadata=bearer(coach), timeout=10
            )
        ),
        _refusal(lambda: update(stub, coach, progress, "goals.progress")),
    ]


def _without_id(f: Failure, goal_id: str) -> Failure:
    return Failure(
        f.code,
        f.message.replace(goal_id, "<id>"),
        f.reason,
        f.domain,
        f.error_infos,
        f.field_violations,
    )


def test_a_goal_the_provider_cannot_see_answers_like_a_missing_one(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, coach: str, coach_wrote: pb.CarePlan
) -> None:
    etag = get(stub, coach).etag
    hidden = _item_refusals(stub, coach, "lung", etag)
    missing = _item_refusals(stub, coach, "no-such-goal", etag)
    assert hidden[0].code == grpc.StatusCode.NOT_FOUND
    assert hidden[0].reason == "GOAL_NOT_FOUND"
    assert [_without_id(f, "lung") for f in hidden] == [
        _without_id(f, "no-such-goal") for f in missing
    ]
    # Nothing was written.
    assert get(stub, users.gp).etag == etag


def test_revisions_tell_the_provider_nothing_its_part_does_not(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, coach: str, coach_wrote: pb.CarePlan
) -> None:
    before = get(stub, users.specialist)
    stub.CreateGoal(
        rpc.CreateGoalRequest(
            parent=P1,
            goal=pb.Goal(description="Inhalatietechniek verbeteren"),
            etag=before.etag,
        ),
        metadata=bearer(users.specialist),
        timeout=10,
    )

    def revisions(token: str) -> dict[int, pb.CarePlanRevision]:
        page = stub.ListCarePlanRevisions(
            rpc.ListCarePlanRevisionsRequest(parent=P1, page_size=1000),
            metadata=bearer(token),
            timeout=10,
        )
        return {r.version: r for r in page.care_plan_revisions}

    seen, full = revisions(coach), revisions(users.gp)
    assert seen.keys() == full.keys()
    hospitals = full[max(full)]
    assert hospitals.organisation == "organisations/hosp-catharina"
    assert (hospitals.change_summary, list(hospitals.changed_fields)) == (
        "goals: 1 added",
        ["goals"],
    )
    assert hospitals.author
    theirs = seen[max(seen)]
    assert (theirs.change_summary, list(theirs.changed_fields), theirs.author) == (
        "no visible change",
        [],
        "",
    )
    assert theirs.organisation == hospitals.organisation
    # Its own whole-list update is described as it sees it, with its author.
    own = next(r for r in seen.values() if r.change_summary == "goals: 1 added")
    assert own.organisation == PROVIDER
    assert own.author == full[own.version].author
    # No revision names a group it cannot see.
    hidden_groups = {"conditions", "informal_carers", "evaluations", "consult_preparation"}
    for r in seen.values():
        assert not set(r.changed_fields) & hidden_groups, r


@pytest.mark.parametrize("who", ["gp", "specialist", "patient"])
def test_the_gp_the_specialist_and_the_patient_still_see_the_whole_plan(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, coach_wrote: pb.CarePlan, who: str
) -> None:
    plan = get(stub, getattr(users, who))
    assert {"walk", "hba1c", "lung", COACH_GOAL} <= {g.id for g in plan.goals}
    assert {"gli", "scan", COACH_ACTION} <= {a.id for a in plan.actions}
    assert plan.conditions and plan.evaluations and plan.informal_carers
    assert plan.etag == get(stub, users.gp).etag

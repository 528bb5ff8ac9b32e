"""CarePlan and Goal over every enum value (no platform)."""

from __future__ import annotations

import pytest
from fhir_api.resources import careplan
from fhir_api.resources.common import Codes
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.careplan.v1 import careplan_pb2 as pb

from ..valuesets import (
    CARE_PLAN_ACTIVITY_STATUS,
    GOAL_ACHIEVEMENT,
    GOAL_STATUS,
    REQUEST_STATUS,
    valid,
)

CODES = Codes("https://carenet.example/fhir")


def _spelled(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower().replace("_", "-")


def _plan(status: int = pb.CARE_PLAN_STATUS_ACTIVE, **fields: object) -> pb.CarePlan:
    return pb.CarePlan(
        name="patients/p-0001/carePlan",
        status=status,  # type: ignore[arg-type]
        what_matters=["Met de kleinkinderen kunnen fietsen"],
        record_holder="organisations/gp-de-linde",
        version=4,
        create_time=Timestamp(seconds=1_700_000_000),
        update_time=Timestamp(seconds=1_700_000_900),
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("status", [v for v in pb.CarePlanStatus.values() if v])
def test_every_care_plan_status(status: int) -> None:
    resource = valid(careplan.care_plan(_plan(status), CODES))
    assert resource["status"] in REQUEST_STATUS
    assert resource["status"] == _spelled(pb.CarePlanStatus.Name(status), "CARE_PLAN_STATUS_")  # type: ignore[arg-type]
    assert resource["intent"] == "plan"
    assert resource["id"] == "p-0001"
    assert resource["subject"] == {"reference": "Patient/p-0001"}
    assert resource["meta"]["versionId"] == "4"
    assert resource["description"] == "Met de kleinkinderen kunnen fietsen"


@pytest.mark.parametrize("lifecycle", [v for v in pb.GoalLifecycleStatus.values() if v])
def test_every_goal_lifecycle_and_achievement_status(lifecycle: int) -> None:
    for achievement in pb.GoalAchievementStatus.values():
        item = pb.Goal(
            id="g-1",
            description="Elke dag 30 minuten wandelen",
            lifecycle_status=lifecycle,  # type: ignore[arg-type]
            achievement_status=achievement,
            owner="patients/p-0001",
            target=pb.GoalTarget(
                measure="BMI", high=28, unit="kg/m2", due_time=Timestamp(seconds=1_750_000_000)
            ),
            progress=[
                pb.ProgressEntry(text="gaat goed", record_time=Timestamp(seconds=1_700_100_000))
            ],
        )
        goal = valid(careplan.goal(_plan(goals=[item]), item))
        assert goal["id"] == "p-0001.g-1"
        assert goal["lifecycleStatus"] in GOAL_STATUS
        assert goal["lifecycleStatus"] == _spelled(
            pb.GoalLifecycleStatus.Name(lifecycle),  # type: ignore[arg-type]
            "GOAL_LIFECYCLE_STATUS_",
        )
        if achievement:
            [coding] = goal["achievementStatus"]["coding"]
            assert coding["system"] == "http://terminology.hl7.org/CodeSystem/goal-achievement"
            assert coding["code"] in GOAL_ACHIEVEMENT
            assert coding["code"] == _spelled(
                pb.GoalAchievementStatus.Name(achievement), "GOAL_ACHIEVEMENT_STATUS_"
            )
        else:
            assert "achievementStatus" not in goal
        assert goal["expressedBy"] == {"reference": "Patient/p-0001"}
        assert goal["target"] == [
            {
                "measure": {"text": "BMI"},
                "detailQuantity": {"value": 28, "comparator": "<=", "unit": "kg/m2"},
                "dueDate": "2025-06-15",
            }
        ]


def test_goal_targets_ranges_and_organisation_goals() -> None:
    item = pb.Goal(
        id="g-2",
        description="HbA1c tussen 48 en 53",
        owner="organisations/gp-de-linde",
        target=pb.GoalTarget(measure="HbA1c", low=48, high=53, unit="mmol/mol"),
    )
    goal = valid(careplan.goal(_plan(goals=[item]), item))
    assert goal["target"][0]["detailRange"]["low"] == {"value": 48, "unit": "mmol/mol"}
    assert "expressedBy" not in goal  # an organisation's goal names no person


@pytest.mark.parametrize("status", [v for v in pb.ActivityStatus.values() if v])
def test_every_activity_status_and_kind(status: int) -> None:
    actions = [
        pb.Action(
            id=f"a-{kind}",
            description="Leefstijlconsult",
            kind=kind,
            status=status,  # type: ignore[arg-type]
            responsible_organisation="organisations/gp-de-linde",
            goals=["g-1"],
        )
        for kind in pb.ActionKind.values()
        if kind
    ]
    actions.append(
        pb.Action(
            id="a-ref",
            description="GLI",
            kind=pb.ACTION_KIND_REFERRAL,
            status=status,  # type: ignore[arg-type]
            responsible_organisation="organisations/gli-beweegfit",
            referral="patients/p-0001/referrals/r-9",
        )
    )
    resource = valid(
        careplan.care_plan(
            _plan(
                actions=actions,
                evaluations=[
                    pb.EvaluationMoment(id="e-1", review_time=Timestamp(seconds=1_760_000_000))
                ],
            ),
            CODES,
        )
    )
    details = [a["detail"] for a in resource["activity"] if "detail" in a]
    for detail in details[:-1]:
        assert detail["status"] in CARE_PLAN_ACTIVITY_STATUS
        assert detail["status"] == _spelled(pb.ActivityStatus.Name(status), "ACTIVITY_STATUS_")  # type: ignore[arg-type]
        assert detail["goal"] == [{"reference": "Goal/p-0001.g-1"}]
    assert details[-1]["status"] == "scheduled"  # the evaluation moment, no outcome yet
    references = [a["reference"] for a in resource["activity"] if "reference" in a]
    assert references == [{"reference": "ServiceRequest/p-0001.r-9"}]


def test_condition_code_systems_are_uris() -> None:
    plan = _plan(
        conditions=[
            pb.Condition(id="dm2", code="T90.02", system="ICPC-1", display="Diabetes type 2"),
            pb.Condition(id="x", code="44054006", system="http://snomed.info/sct", display="DM2"),
            pb.Condition(id="y", code="q", system="own list", display="Iets anders"),
        ]
    )
    contained = valid(careplan.care_plan(plan, CODES))["contained"]
    assert [c["code"].get("coding", [{}])[0].get("system") for c in contained] == [
        "http://hl7.org/fhir/sid/icpc-1-nl",
        "http://snomed.info/sct",
        None,
    ]
    assert contained[2]["code"]["text"] == "Iets anders"

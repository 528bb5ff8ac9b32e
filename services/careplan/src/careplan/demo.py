"""The demo plan used by ``make run``: the one care plan of p-0001 (pat.dewit, DM2), held by
GP practice De Linde, with her own goal (walk 30 minutes a day), the practice's goal
(HbA1c <= 53 mmol/mol), an action linked to her GLI referral at BeweegFit, and an
evaluation moment. The ids are the demo region's (see identity's demo.py and the realm).
"""

from __future__ import annotations

import datetime as dt

from careplan.deps import Deps
from careplan.models import (
    Action,
    ActionKind,
    ActivityStatus,
    Condition,
    ConsultPreparation,
    EvaluationMoment,
    Goal,
    GoalAchievement,
    GoalLifecycle,
    GoalTarget,
    Participant,
    ParticipantRole,
    PlanContent,
    PlanStatus,
    PlanView,
)
from careplan.use_cases import plans

CARE_GROUP = "cg-zuidoost"
PATIENT = "p-0001"
RECORD_HOLDER = "gp-de-linde"
# The demo GLI referral; `careplan seed-demo NAME` links another one.
DEMO_REFERRAL = "patients/p-0001/referrals/gli-demo"


def plan(referral: str = DEMO_REFERRAL, now: dt.datetime | None = None) -> PlanContent:
    now = now or dt.datetime.now(dt.UTC)
    return PlanContent(
        status=PlanStatus.ACTIVE,
        what_matters=[
            "Weer met mijn kleinkinderen kunnen fietsen",
            "Zelf boodschappen blijven doen",
        ],
        conditions=[
            Condition(id="dm2", code="T90.02", system="ICPC-1", display="Diabetes mellitus type 2")
        ],
        participants=[
            Participant(
                id="coordinator",
                role=ParticipantRole.COORDINATING_PRACTITIONER,
                organisation="gp-de-linde",
                persons=["dr. Jansen", "POH Bakker"],
            ),
            Participant(
                id="hospital",
                role=ParticipantRole.HOSPITAL,
                organisation="hosp-catharina",
                persons=["dr. Smit"],
            ),
            Participant(
                id="gli", role=ParticipantRole.LIFESTYLE_PROVIDER, organisation="gli-beweegfit"
            ),
        ],
        goals=[
            Goal(
                id="walk",
                description="Elke dag een half uur wandelen",
                target=GoalTarget(
                    measure="minutes walked a day",
                    low=30,
                    unit="min/d",
                    due_time=now + dt.timedelta(days=90),
                ),
                lifecycle_status=GoalLifecycle.ACTIVE,
                achievement_status=GoalAchievement.IN_PROGRESS,
                owner=f"patients/{PATIENT}",
                addresses=["dm2"],
            ),
            Goal(
                id="hba1c",
                description="HbA1c op of onder 53",
                target=GoalTarget(
                    measure="HbA1c", high=53, unit="mmol/mol", due_time=now + dt.timedelta(days=180)
                ),
                lifecycle_status=GoalLifecycle.ACTIVE,
                achievement_status=GoalAchievement.IN_PROGRESS,
                owner=f"organisations/{RECORD_HOLDER}",
                addresses=["dm2"],
            ),
        ],
        actions=[
            Action(
                id="gli",
                description="Gecombineerde leefstijlinterventie bij BeweegFit",
                kind=ActionKind.REFERRAL,
                status=ActivityStatus.NOT_STARTED,
                responsible_organisation="gp-de-linde",
                responsible_person="dr. Jansen",
                referral=referral,
                goals=["walk"],
            ),
            Action(
                id="checkup",
                description="Driemaandelijkse diabetescontrole bij de POH",
                kind=ActionKind.CONSULT,
                status=ActivityStatus.SCHEDULED,
                responsible_organisation="gp-de-linde",
                responsible_person="POH Bakker",
                schedule="FREQ=MONTHLY;INTERVAL=3",
                goals=["hba1c"],
            ),
        ],
        evaluations=[
            EvaluationMoment(
                id="review-1", review_time=now + dt.timedelta(days=90), organisation="gp-de-linde"
            )
        ],
        consult_preparation=ConsultPreparation(topics=["Voetklachten bij het wandelen"]),
    )


def seed(deps: Deps, referral: str = "") -> PlanView:
    """Creates the demo plan; running it again changes nothing."""
    return plans.seed_care_plan(
        deps, PATIENT, CARE_GROUP, RECORD_HOLDER, plan(referral or DEMO_REFERRAL), "careplan-seed"
    )

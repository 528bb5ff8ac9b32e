"""Item-level edits (careplan.use_cases.plan_items) against the in-memory fakes: one goal,
action or evaluation moment by its id, at the plan's etag, under the whole-plan rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from careplan import errors
from careplan.deps import Deps
from careplan.models import (
    Action,
    ActionKind,
    ActivityStatus,
    EvaluationMoment,
    Goal,
    PlanContent,
    PlanView,
    ProgressEntry,
)
from careplan.use_cases import plan_items, plans
from careplan.use_cases.plan_items import ACTION, EVALUATION_MOMENT, GOAL, Edit, Op
from servicekit.errors import InvalidArgument, PermissionDenied
from servicekit.idempotency import IdempotentRequest
from servicekit.identity_client import Access

from ..fakes import COACH, GP, PATIENT, SPECIALIST, FakeIdentity, fake_deps


def _created(identity: FakeIdentity | None = None) -> tuple[Deps, PlanView]:
    deps = fake_deps(identity=identity)
    content = PlanContent(
        what_matters=["Fietsen met de kleinkinderen"],
        goals=[
            Goal(id="walk", description="Elke dag wandelen", owner="patients/p-0001"),
            Goal(id="hba1c", description="HbA1c onder 53", owner="organisations/gp-de-linde"),
        ],
        actions=[
            Action(id="checkup", description="Controle", kind=ActionKind.CONSULT),
            Action(
                id="scan",
                description="Longfunctie",
                kind=ActionKind.CONSULT,
                responsible_organisation="hosp-catharina",
            ),
        ],
    )
    return deps, plans.create_care_plan(deps, GP, "p-0001", content)


def _revisions(deps: Deps) -> int:
    return len(deps.store.revisions)  # type: ignore[attr-defined]


def test_the_patient_adds_a_goal_of_their_own_without_sending_the_others() -> None:
    identity = FakeIdentity()
    deps, view = _created(identity)
    asked = len(identity.questions)
    new = Goal(id="bike", description="Weer fietsen")

    after = plan_items.edit_item(
        deps, PATIENT, "p-0001", Edit(GOAL, Op.CREATE, "bike", new), view.etag
    )

    assert [g.id for g in after.content.goals] == ["walk", "hba1c", "bike"]
    assert after.content.goal("bike").owner == "patients/p-0001"  # type: ignore[union-attr]
    assert after.version == view.version + 1
    assert [c.access for c in identity.questions[asked:]] == [
        Access.UPDATE
    ]  # asked once, as an update
    revision = deps.store.revisions[("p-0001", after.version)]  # type: ignore[attr-defined]
    assert (revision.change_summary, revision.changed_fields) == ("goals: 1 added", "goals")


def test_a_stale_etag_is_aborted_and_writes_nothing() -> None:
    deps, view = _created()
    plan_items.edit_item(
        deps, PATIENT, "p-0001", Edit(GOAL, Op.DELETE, "walk"), view.etag
    )  # now at version 2
    before = _revisions(deps)
    with pytest.raises(errors.EtagMismatch):
        plan_items.edit_item(
            deps,
            GP,
            "p-0001",
            Edit(GOAL, Op.UPDATE, "hba1c", Goal(description="HbA1c onder 50"), ["description"]),
            view.etag,
        )
    assert _revisions(deps) == before


def test_changing_another_partys_goal_is_refused_naming_the_goal() -> None:
    deps, view = _created()
    edit = Edit(GOAL, Op.UPDATE, "hba1c", Goal(description="anders"), ["description"])
    with pytest.raises(PermissionDenied) as caught:
        plan_items.edit_item(deps, PATIENT, "p-0001", edit, view.etag)
    assert caught.value.reason == "GOAL_NOT_OWNED"
    assert caught.value.metadata == {"goal_id": "hba1c", "field": "goal"}


def test_removing_another_organisations_action_is_refused_naming_the_action() -> None:
    deps, view = _created()
    with pytest.raises(PermissionDenied) as caught:
        plan_items.edit_item(
            deps, SPECIALIST, "p-0001", Edit(ACTION, Op.DELETE, "checkup"), view.etag
        )
    assert caught.value.reason == "ACTION_NOT_OWN_ORGANISATION"
    assert caught.value.metadata == {"action_id": "checkup"}


def test_an_organisation_changes_one_field_of_its_own_action_and_keeps_the_rest() -> None:
    deps, view = _created()
    edit = Edit(ACTION, Op.UPDATE, "scan", Action(status=ActivityStatus.COMPLETED), ["status"])
    after = plan_items.edit_item(deps, SPECIALIST, "p-0001", edit, view.etag)
    scan = next(a for a in after.content.actions if a.id == "scan")
    assert scan.status is ActivityStatus.COMPLETED
    assert (scan.description, scan.kind) == ("Longfunctie", ActionKind.CONSULT)
    assert after.content.actions[0] == view.content.actions[0]


def test_a_new_action_must_be_of_the_callers_organisation() -> None:
    deps, view = _created()
    theirs = Action(
        id="gli", description="GLI", kind=ActionKind.REFERRAL, responsible_organisation="hosp-x"
    )
    with pytest.raises(PermissionDenied) as caught:
        plan_items.edit_item(
            deps, COACH, "p-0001", Edit(ACTION, Op.CREATE, "gli", theirs), view.etag
        )
    assert caught.value.metadata == {"action_id": "gli", "field": "action"}


def test_an_unknown_item_is_not_found_naming_it() -> None:
    deps, view = _created()
    with pytest.raises(errors.ItemNotFound) as caught:
        plan_items.edit_item(deps, PATIENT, "p-0001", Edit(GOAL, Op.DELETE, "nope"), view.etag)
    assert caught.value.reason == "GOAL_NOT_FOUND"
    assert caught.value.metadata == {"goal_id": "nope"}


def test_a_new_item_with_an_id_in_use_already_exists() -> None:
    deps, view = _created()
    with pytest.raises(errors.ItemExists) as caught:
        plan_items.edit_item(
            deps,
            PATIENT,
            "p-0001",
            Edit(GOAL, Op.CREATE, "walk", Goal(id="walk", description="Nog eens")),
            view.etag,
        )
    assert caught.value.reason == "GOAL_EXISTS"


def test_a_field_violation_names_the_item_field_of_the_request() -> None:
    deps, view = _created()
    with pytest.raises(InvalidArgument) as caught:
        plan_items.edit_item(
            deps, PATIENT, "p-0001", Edit(GOAL, Op.CREATE, "", Goal(description=" ")), view.etag
        )
    assert [(v.field, v.reason) for v in caught.value.violations] == [
        ("goal.description", "TEXT_REQUIRED")
    ]


def test_a_field_the_service_writes_cannot_be_named_in_the_mask() -> None:
    identity = FakeIdentity()
    deps, view = _created(identity)
    asked = len(identity.questions)
    edit = Edit(GOAL, Op.UPDATE, "walk", Goal(), ["progress"])
    with pytest.raises(InvalidArgument) as caught:
        plan_items.edit_item(deps, PATIENT, "p-0001", edit, view.etag)
    assert caught.value.reason == "FIELD_NOT_UPDATABLE"
    assert len(identity.questions) == asked  # decided on the request alone


def test_evaluation_moments_are_the_coordinating_practitioners() -> None:
    deps, view = _created()
    moment = EvaluationMoment(review_time=dt.datetime(2027, 3, 1, tzinfo=dt.UTC))
    with pytest.raises(errors.FieldGroupNotWritable):
        plan_items.edit_item(
            deps, SPECIALIST, "p-0001", Edit(EVALUATION_MOMENT, Op.CREATE, "", moment), view.etag
        )
    after = plan_items.edit_item(
        deps, GP, "p-0001", Edit(EVALUATION_MOMENT, Op.CREATE, "", moment), view.etag
    )
    assert [e.organisation for e in after.content.evaluations] == ["gp-de-linde"]


def test_a_retry_with_the_same_request_id_returns_the_first_result_and_writes_nothing() -> None:
    identity = FakeIdentity()
    deps, view = _created(identity)
    edit = Edit(GOAL, Op.CREATE, "bike", Goal(id="bike", description="Fietsen"))
    first = plan_items.edit_item(
        deps,
        PATIENT,
        "p-0001",
        edit,
        view.etag,
        IdempotentRequest.of(PATIENT, "r-1", edit.method, "fp"),
    )
    revisions, asked = _revisions(deps), len(identity.questions)

    again = plan_items.edit_item(
        deps,
        PATIENT,
        "p-0001",
        edit,
        view.etag,
        IdempotentRequest.of(PATIENT, "r-1", edit.method, "fp"),
    )

    assert again == first
    assert _revisions(deps) == revisions
    assert [c.access for c in identity.questions[asked:]] == [
        Access.READ
    ]  # a read of what it returns
    with pytest.raises(InvalidArgument) as caught:
        plan_items.edit_item(
            deps,
            PATIENT,
            "p-0001",
            edit,
            first.etag,
            IdempotentRequest.of(PATIENT, "r-1", edit.method, "other"),
        )
    assert caught.value.reason == "REQUEST_ID_REUSED"


def test_a_goals_progress_survives_a_change_of_the_goal() -> None:
    deps, view = _created()
    goals = [dataclasses.replace(g, progress=[]) for g in view.content.goals]
    goals[0].progress = [ProgressEntry(text="20 minuten gelopen")]
    with_progress = plans.update_care_plan(
        deps,
        PATIENT,
        "p-0001",
        dataclasses.replace(view.content, goals=goals),
        ["goals.progress"],
        view.etag,
    )
    edit = Edit(GOAL, Op.UPDATE, "walk", Goal(description="Elke dag 30 minuten"), ["description"])
    after = plan_items.edit_item(deps, PATIENT, "p-0001", edit, with_progress.etag)
    walk = after.content.goal("walk")
    assert walk is not None
    assert [e.text for e in walk.progress] == ["20 minuten gelopen"]
    assert walk.description == "Elke dag 30 minuten"


@pytest.mark.parametrize("overtaken", ["before the read", "before the write"])
def test_a_retry_overtaken_by_the_first_request_returns_its_plan(overtaken: str) -> None:
    """The first request with an id commits while the retry runs (after the retry found no
    record): the retry answers the plan the first wrote, which is written once."""
    deps, view = _created()
    edit = Edit(GOAL, Op.CREATE, "bike", Goal(id="bike", description="Fietsen"))
    first: list[PlanView] = []
    opened = 0
    uow = deps.uow
    at = 2 if overtaken == "before the read" else 3  # 1: the replay check, 2: the read

    def racing_uow() -> Any:
        nonlocal opened
        opened += 1
        if opened == at:
            first.append(
                plan_items.edit_item(
                    dataclasses.replace(deps, uow=uow),
                    PATIENT,
                    "p-0001",
                    edit,
                    view.etag,
                    IdempotentRequest.of(PATIENT, "r", edit.method, "fp"),
                )
            )
        return uow()

    retry = dataclasses.replace(deps, uow=racing_uow)
    again = plan_items.edit_item(
        retry,
        PATIENT,
        "p-0001",
        edit,
        view.etag,
        IdempotentRequest.of(PATIENT, "r", edit.method, "fp"),
    )

    assert [again] == first
    assert again.version == view.version + 1
    assert _revisions(deps) == view.version + 1

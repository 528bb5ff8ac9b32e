"""The plan's use cases against fakes: creation, the write rules, history, validation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from typing import Any

import pytest

from careplan import errors, policy
from careplan.deps import Deps
from careplan.models import (
    Action,
    ActionKind,
    Goal,
    GoalTarget,
    InformalCarer,
    ParticipantRole,
    PlanContent,
    PlanStatus,
    PlanView,
    ProgressEntry,
    from_document,
    to_document,
    view_from_document,
    view_to_document,
)
from careplan.policy import FieldGroup, Role, Scope
from careplan.use_cases import plans, revisions
from servicekit.errors import InvalidArgument, PermissionDenied
from servicekit.idempotency import IdempotentRequest
from servicekit.identity_client import Access
from servicekit.paging import PageRequest

from ..fakes import (
    CARER,
    COACH,
    GP,
    PATIENT,
    SPECIALIST,
    STRANGER,
    FakeIdentity,
    Store,
    fake_deps,
)


def _plan() -> PlanContent:
    return PlanContent(
        what_matters=["Fietsen met de kleinkinderen"],
        goals=[
            Goal(id="walk", description="Elke dag wandelen", owner="patients/p-0001"),
            Goal(id="hba1c", description="HbA1c onder 53", owner="organisations/gp-de-linde"),
        ],
        actions=[
            Action(
                id="gli",
                description="GLI",
                kind=ActionKind.REFERRAL,
                referral="patients/p-0001/referrals/r1",
            ),
        ],
    )


def _created(identity: FakeIdentity | None = None) -> tuple[Deps, PlanView]:
    deps = fake_deps(identity=identity)
    return deps, plans.create_care_plan(deps, GP, "p-0001", _plan())


def test_the_creator_becomes_record_holder_and_coordinating_practitioner() -> None:
    _, view = _created()
    assert view.record_holder_id == "gp-de-linde"
    assert view.version == 1
    assert view.content.status is PlanStatus.ACTIVE
    coordinators = [
        p for p in view.content.participants if p.role is ParticipantRole.COORDINATING_PRACTITIONER
    ]
    assert [p.organisation for p in coordinators] == ["gp-de-linde"]
    assert view.content.actions[0].responsible_organisation == "gp-de-linde"


def test_a_second_plan_for_the_same_patient_is_refused() -> None:
    deps, _ = _created()
    with pytest.raises(errors.CarePlanExists):
        plans.create_care_plan(deps, GP, "p-0001", _plan())


def test_a_repeated_create_with_the_same_request_id_returns_the_first_plan() -> None:
    deps = fake_deps()
    first = plans.create_care_plan(
        deps, GP, "p-0001", _plan(), IdempotentRequest.of(GP, "r-1", "CreateCarePlan", "fp-a")
    )
    again = plans.create_care_plan(
        deps, GP, "p-0001", _plan(), IdempotentRequest.of(GP, "r-1", "CreateCarePlan", "fp-a")
    )
    assert again == first
    assert len(deps.store.revisions) == 1  # type: ignore[attr-defined]


def test_a_repeated_create_is_asked_about_as_a_read_of_the_plan_it_returns() -> None:
    identity = FakeIdentity()
    deps = fake_deps(identity=identity)
    plans.create_care_plan(
        deps, GP, "p-0001", _plan(), IdempotentRequest.of(GP, "r-1", "CreateCarePlan", "fp-a")
    )
    plans.create_care_plan(
        deps, GP, "p-0001", _plan(), IdempotentRequest.of(GP, "r-1", "CreateCarePlan", "fp-a")
    )
    assert [(c.access, c.record_holder_id) for c in identity.questions] == [
        (Access.CREATE, "gp-de-linde"),
        (Access.READ, "gp-de-linde"),
    ]


def test_a_request_id_reused_for_another_request_is_refused_and_returns_nothing() -> None:
    deps = fake_deps()
    plans.create_care_plan(
        deps, GP, "p-0001", _plan(), IdempotentRequest.of(GP, "r-1", "CreateCarePlan", "fp-a")
    )
    with pytest.raises(InvalidArgument) as caught:
        plans.create_care_plan(
            deps, GP, "p-0002", _plan(), IdempotentRequest.of(GP, "r-1", "CreateCarePlan", "fp-b")
        )
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert [v.field for v in caught.value.violations] == ["request_id"]
    assert set(deps.store.plans) == {"p-0001"}  # type: ignore[attr-defined]


def test_a_request_id_is_stored_with_the_requests_fingerprint() -> None:
    deps = fake_deps()
    plans.create_care_plan(
        deps, GP, "p-0001", _plan(), IdempotentRequest.of(GP, "r-1", "CreateCarePlan", "fp-a")
    )
    record = deps.store.requests[("dr.jansen", "r-1")]  # type: ignore[attr-defined]
    assert (record.method, record.fingerprint, record.resource_name) == (
        "CreateCarePlan",
        "fp-a",
        "patients/p-0001/carePlan",
    )


def test_a_patient_cannot_create_a_plan() -> None:
    with pytest.raises(errors.RoleNotPermitted):
        plans.create_care_plan(fake_deps(), PATIENT, "p-0001", _plan())


def test_every_read_asks_identity_with_the_plans_record_holder() -> None:
    identity = FakeIdentity()
    deps, _ = _created(identity)
    plans.get_care_plan(deps, SPECIALIST, "p-0001")
    q = identity.questions[-1]
    assert (q.subject.subject, q.patient_id, q.access, q.record_holder_id) == (
        "dr.smit",
        "p-0001",
        Access.READ,
        "gp-de-linde",
    )


def test_a_read_of_a_cached_plan_asks_identity_once_and_obeys_its_answer() -> None:
    identity = FakeIdentity()
    deps, _ = _created(identity)
    plans.get_care_plan(deps, SPECIALIST, "p-0001")  # the plan is now cached
    asked = len(identity.questions)
    plans.get_care_plan(deps, SPECIALIST, "p-0001")
    assert len(identity.questions) == asked + 1
    identity.deny["dr.smit"] = "NO_CONSENT"
    with pytest.raises(errors.AccessDenied) as caught:
        plans.get_care_plan(deps, SPECIALIST, "p-0001")
    assert caught.value.reason == "NO_CONSENT"


def test_a_plan_whose_record_holder_changed_since_it_was_cached_is_asked_about_once() -> None:
    identity = FakeIdentity()
    store = Store()
    deps = fake_deps(store, identity)
    plans.create_care_plan(deps, GP, "p-0001", _plan())
    plans.get_care_plan(deps, SPECIALIST, "p-0001")  # cached with holder gp-de-linde
    row = store.plans["p-0001"]
    moved = dataclasses.replace(
        row.view(), record_holder_id="gp-het-anker", version=row.version + 1
    )
    row.record_holder_id, row.version = "gp-het-anker", moved.version
    row.document = view_to_document(moved)  # as another replica would have written it
    asked = len(identity.questions)

    read = plans.get_care_plan(deps, SPECIALIST, "p-0001")

    holders = [call.record_holder_id for call in identity.questions[asked:]]
    assert holders == ["gp-het-anker"]  # one question, about the plan as read
    assert read.record_holder_id == "gp-het-anker"


def test_a_carer_whose_mandate_ended_since_the_plan_was_cached_is_asked_about_once() -> None:
    identity = FakeIdentity()
    deps, view = _created(identity)
    mandated = dataclasses.replace(view.content, informal_carers=[InformalCarer(user="carer-1")])
    v2 = plans.update_care_plan(deps, PATIENT, "p-0001", mandated, ["informal_carers"], view.etag)
    plans.get_care_plan(deps, CARER, "p-0001")  # cached with the mandate
    ended = dataclasses.replace(v2.content, informal_carers=[])
    plans.update_care_plan(deps, PATIENT, "p-0001", ended, ["informal_carers"], v2.etag)
    identity.deny["carer-1"] = "NOT_OWN_DATA"
    asked = len(identity.questions)

    with pytest.raises(errors.AccessDenied):
        plans.get_care_plan(deps, CARER, "p-0001")

    questions = [(c.subject.patient, c.purpose) for c in identity.questions[asked:]]
    assert questions == [("patients/p-0002", "care-plan")]  # as themselves; no mandate asked


def test_a_read_of_a_plan_that_does_not_exist_is_asked_about_before_it_is_not_found() -> None:
    """Asked about as the plan would be: held by the coordinating practice."""
    identity = FakeIdentity()
    deps = fake_deps(identity=identity)
    with pytest.raises(errors.CarePlanNotFound):
        plans.get_care_plan(deps, SPECIALIST, "p-0003")
    assert [(c.patient_id, c.access, c.record_holder_id) for c in identity.questions] == [
        ("p-0003", Access.READ, "gp-de-linde")
    ]


def test_another_care_groups_plan_is_asked_about_as_no_plan_and_not_found() -> None:
    identity = FakeIdentity()
    deps, _ = _created(identity)
    elsewhere = dataclasses.replace(SPECIALIST, care_group="organisations/cg-noord")
    with pytest.raises(errors.CarePlanNotFound):
        plans.get_care_plan(deps, elsewhere, "p-0001")
    assert [(c.patient_id, c.record_holder_id) for c in identity.questions[-1:]] == [
        ("p-0001", "gp-de-linde")
    ]


def test_a_denial_for_a_plan_that_does_not_exist_is_the_same_denial() -> None:
    deps, _ = _created(FakeIdentity(deny={"dr.smit": "NO_CARE_RELATIONSHIP"}))
    with pytest.raises(errors.AccessDenied) as there:
        plans.get_care_plan(deps, SPECIALIST, "p-0001")
    with pytest.raises(errors.AccessDenied) as missing:
        plans.get_care_plan(deps, SPECIALIST, "p-0003")
    assert (there.value.message, there.value.reason, there.value.metadata) == (
        missing.value.message,
        missing.value.reason,
        missing.value.metadata,
    )


def test_a_denial_by_identity_is_permission_denied_with_identitys_reason() -> None:
    deps, _ = _created(FakeIdentity(deny={"dr.smit": "NO_CONSENT"}))
    with pytest.raises(errors.AccessDenied) as caught:
        plans.get_care_plan(deps, SPECIALIST, "p-0001")
    assert caught.value.reason == "NO_CONSENT"


def test_an_informal_carer_is_authorized_under_the_patients_mandate() -> None:
    identity = FakeIdentity()
    deps, view = _created(identity)
    mandated = dataclasses.replace(view.content, informal_carers=[InformalCarer(user="carer-1")])
    plans.update_care_plan(deps, PATIENT, "p-0001", mandated, ["informal_carers"], view.etag)
    plans.get_care_plan(deps, CARER, "p-0001")
    q = identity.questions[-1]
    assert q.subject.subject == "carer-1"
    assert q.subject.patient == "patients/p-0001"
    assert q.purpose == "informal-carer-mandate"


def test_without_a_mandate_another_patient_is_asked_about_as_themselves() -> None:
    identity = FakeIdentity(deny={"someone": "NOT_OWN_DATA"})
    deps, _ = _created(identity)
    with pytest.raises(errors.AccessDenied) as caught:
        plans.get_care_plan(deps, STRANGER, "p-0001")
    assert caught.value.reason == "NOT_OWN_DATA"
    assert identity.questions[-1].subject.patient == "patients/p-0009"


def test_every_update_is_a_new_version_with_author_and_summary() -> None:
    deps, view = _created()
    changed = dataclasses.replace(view.content, what_matters=["Zelf boodschappen doen"])
    after = plans.update_care_plan(deps, PATIENT, "p-0001", changed, ["what_matters"], view.etag)
    assert after.version == 2
    page = revisions.list_revisions(deps, PATIENT, "p-0001", PageRequest(10))
    assert [(r.version, r.author) for r in page.items] == [(1, "dr.jansen"), (2, "pat.dewit")]
    assert page.items[1].changed_fields == ["what_matters"]
    assert plans.get_care_plan(deps, PATIENT, "p-0001", version=1).content.what_matters == [
        "Fietsen met de kleinkinderen"
    ]


def test_a_stale_etag_is_aborted() -> None:
    deps, view = _created()
    changed = dataclasses.replace(view.content, what_matters=["een"])
    plans.update_care_plan(deps, PATIENT, "p-0001", changed, ["what_matters"], view.etag)
    with pytest.raises(errors.EtagMismatch):
        plans.update_care_plan(deps, PATIENT, "p-0001", changed, ["what_matters"], view.etag)


def test_permission_denied_takes_precedence_over_a_stale_etag() -> None:
    deps, view = _created()
    with pytest.raises(errors.FieldGroupNotWritable):
        plans.update_care_plan(deps, PATIENT, "p-0001", view.content, ["status"], 'W/"99"')


def test_an_unknown_mask_path_is_invalid() -> None:
    deps, view = _created()
    with pytest.raises(InvalidArgument) as caught:
        plans.update_care_plan(deps, GP, "p-0001", view.content, ["record_holder"], view.etag)
    assert caught.value.reason == "FIELD_NOT_UPDATABLE"


def test_the_patient_cannot_change_the_practices_goal() -> None:
    deps, view = _created()
    goals = [
        dataclasses.replace(g, description="anders") if g.id == "hba1c" else g
        for g in view.content.goals
    ]
    with pytest.raises(PermissionDenied) as caught:
        plans.update_care_plan(
            deps,
            PATIENT,
            "p-0001",
            dataclasses.replace(view.content, goals=goals),
            ["goals"],
            view.etag,
        )
    assert caught.value.reason == "GOAL_NOT_OWNED"
    assert caught.value.metadata == {"goal_id": "hba1c", "field": "care_plan.goals[1]"}


def test_the_patient_changes_their_own_goal() -> None:
    deps, view = _created()
    goals = [
        dataclasses.replace(g, description="Elke dag 30 minuten wandelen") if g.id == "walk" else g
        for g in view.content.goals
    ]
    after = plans.update_care_plan(
        deps,
        PATIENT,
        "p-0001",
        dataclasses.replace(view.content, goals=goals),
        ["goals"],
        view.etag,
    )
    assert after.content.goal("walk").description == "Elke dag 30 minuten wandelen"  # type: ignore[union-attr]


def test_a_professional_adds_only_actions_of_their_own_organisation() -> None:
    deps, view = _created()
    mine = Action(
        description="Longfunctie",
        kind=ActionKind.CONSULT,
        responsible_organisation="hosp-catharina",
    )
    theirs = Action(
        description="Iets", kind=ActionKind.CONSULT, responsible_organisation="gli-beweegfit"
    )
    after = plans.update_care_plan(
        deps,
        SPECIALIST,
        "p-0001",
        dataclasses.replace(view.content, actions=[*view.content.actions, mine]),
        ["actions"],
        view.etag,
    )
    assert after.content.actions[-1].responsible_organisation == "hosp-catharina"
    # The coach sends back its part of the plan (none of the others' actions) plus two.
    part = plans.get_care_plan(deps, COACH, "p-0001")
    assert part.content.actions == []
    with pytest.raises(PermissionDenied) as caught:
        plans.update_care_plan(
            deps,
            COACH,
            "p-0001",
            dataclasses.replace(part.content, actions=[theirs, mine]),
            ["actions"],
            after.etag,
        )
    assert caught.value.reason == "ACTION_NOT_OWN_ORGANISATION"
    assert caught.value.metadata == {"field": "care_plan.actions[1]"}  # a new one: no id yet


def test_progress_entries_are_appended_with_author_and_time() -> None:
    deps, view = _created()
    goals = [
        dataclasses.replace(g, progress=[ProgressEntry(text="3 keer gewandeld")])
        if g.id == "walk"
        else g
        for g in view.content.goals
    ]
    after = plans.update_care_plan(
        deps,
        PATIENT,
        "p-0001",
        dataclasses.replace(view.content, goals=goals),
        ["goals.progress"],
        view.etag,
    )
    entry = after.content.goal("walk").progress[0]  # type: ignore[union-attr]
    assert (entry.text, entry.author) == ("3 keer gewandeld", "pat.dewit")
    assert entry.record_time is not None and entry.id


def test_progress_entries_cannot_be_changed() -> None:
    deps, view = _created()
    goals = [
        dataclasses.replace(g, progress=[ProgressEntry(text="eerste")]) if g.id == "walk" else g
        for g in view.content.goals
    ]
    after = plans.update_care_plan(
        deps,
        PATIENT,
        "p-0001",
        dataclasses.replace(view.content, goals=goals),
        ["goals.progress"],
        view.etag,
    )
    entry = after.content.goal("walk").progress[0]  # type: ignore[union-attr]
    edited = [
        dataclasses.replace(g, progress=[dataclasses.replace(entry, text="anders")])
        if g.id == "walk"
        else g
        for g in after.content.goals
    ]
    with pytest.raises(InvalidArgument) as caught:
        plans.update_care_plan(
            deps,
            PATIENT,
            "p-0001",
            dataclasses.replace(after.content, goals=edited),
            ["goals.progress"],
            after.etag,
        )
    assert caught.value.reason == "PROGRESS_APPEND_ONLY"
    assert caught.value.violations[0].field == "care_plan.goals[0].progress[0]"


def test_a_due_date_before_the_creation_date_names_the_field() -> None:
    deps = fake_deps()
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    content = PlanContent(goals=[Goal(description="wandelen", target=GoalTarget(due_time=past))])
    with pytest.raises(InvalidArgument) as caught:
        plans.create_care_plan(deps, GP, "p-0001", content)
    assert [v.field for v in caught.value.violations] == ["care_plan.goals[0].target.due_time"]
    assert caught.value.reason == "DUE_DATE_BEFORE_CREATION"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_target_or_progress_value_that_is_not_a_finite_number_names_the_field(
    value: float,
) -> None:
    deps = fake_deps()
    target = GoalTarget(measure="HbA1c", low=value, high=value)
    content = PlanContent(goals=[Goal(description="HbA1c", target=target)])
    with pytest.raises(InvalidArgument) as caught:
        plans.create_care_plan(deps, GP, "p-0001", content)
    assert [v.field for v in caught.value.violations] == [
        "care_plan.goals[0].target.low",
        "care_plan.goals[0].target.high",
    ]
    assert caught.value.reason == "INVALID_NUMBER"
    deps, view = _created()
    goals = [
        dataclasses.replace(g, progress=[ProgressEntry(text="gemeten", value=value)])
        if g.id == "walk"
        else g
        for g in view.content.goals
    ]
    with pytest.raises(InvalidArgument) as caught:
        plans.update_care_plan(
            deps,
            PATIENT,
            "p-0001",
            dataclasses.replace(view.content, goals=goals),
            ["goals.progress"],
            view.etag,
        )
    assert [v.field for v in caught.value.violations] == ["care_plan.goals[0].progress[0].value"]


@pytest.mark.parametrize("version", [-1, 2**31, 2**63 - 1])
def test_a_version_no_plan_can_have_is_invalid(version: int) -> None:
    deps, _ = _created()
    with pytest.raises(InvalidArgument) as caught:
        plans.get_care_plan(deps, PATIENT, "p-0001", version=version)
    assert [v.field for v in caught.value.violations] == ["version"]


def test_an_empty_patient_text_names_the_field() -> None:
    deps, view = _created()
    with pytest.raises(InvalidArgument) as caught:
        plans.update_care_plan(
            deps,
            PATIENT,
            "p-0001",
            dataclasses.replace(view.content, what_matters=["  "]),
            ["what_matters"],
            view.etag,
        )
    assert [v.field for v in caught.value.violations] == ["care_plan.what_matters[0]"]


def test_the_stored_document_round_trips_losslessly() -> None:
    _, view = _created()
    assert view_from_document(view_to_document(view)) == view
    assert from_document(PlanContent, to_document(view.content)) == view.content


def _documented_table() -> dict[FieldGroup, dict[Role, Scope]]:
    """The table in policy's docstring, parsed."""
    assert policy.__doc__ is not None
    rows = [
        line for line in policy.__doc__.splitlines() if line.startswith("| ") and "---" not in line
    ]
    roles = [Role.PATIENT, Role.INFORMAL_CARER, Role.PROFESSIONAL, Role.COORDINATING_PRACTITIONER]
    table: dict[FieldGroup, dict[Role, Scope]] = {}
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        paths = re.findall(r"[a-z_.]+", cells[0].split("(")[0])
        path = paths[0]
        group = policy.MASK_PATHS[path][0]
        table[group] = {r: Scope(c) for r, c in zip(roles, cells[1:], strict=True) if c != "-"}
    return table


def test_the_documented_write_table_is_the_enforced_one() -> None:
    assert _documented_table() == policy.WRITE_RULES


@pytest.mark.parametrize("group", list(FieldGroup))
@pytest.mark.parametrize(
    "role",
    [
        Role.PATIENT,
        Role.INFORMAL_CARER,
        Role.PROFESSIONAL,
        Role.COORDINATING_PRACTITIONER,
        Role.NONE,
    ],
)
def test_each_role_may_write_exactly_the_groups_of_the_table(role: Role, group: FieldGroup) -> None:
    allowed = role in policy.WRITE_RULES[group]
    if allowed:
        assert policy.require_writable(role, [group]) == {group: policy.WRITE_RULES[group][role]}
    else:
        with pytest.raises(errors.FieldGroupNotWritable) as caught:
            policy.require_writable(role, [group])
        assert caught.value.reason == "FIELD_GROUP_NOT_WRITABLE"
        assert caught.value.metadata == {"field_group": group.value, "role": role.value}


def test_a_repeated_create_overtaken_by_the_first_returns_its_plan() -> None:
    """The first create with an id commits while its retry runs (after the retry found no
    record): the retry answers that plan, not ALREADY_EXISTS."""
    deps = fake_deps()
    uow = deps.uow
    opened = 0
    first: list[PlanView] = []

    def racing_uow() -> Any:
        nonlocal opened
        opened += 1
        if opened == 2:  # 1: the replay check, 2: the look for an existing plan
            first.append(
                plans.create_care_plan(
                    dataclasses.replace(deps, uow=uow),
                    GP,
                    "p-0001",
                    _plan(),
                    IdempotentRequest.of(GP, "r-1", "CreateCarePlan", "fp-a"),
                )
            )
        return uow()

    retry = dataclasses.replace(deps, uow=racing_uow)
    again = plans.create_care_plan(
        retry, GP, "p-0001", _plan(), IdempotentRequest.of(GP, "r-1", "CreateCarePlan", "fp-a")
    )
    assert [again] == first
    assert len(deps.store.revisions) == 1  # type: ignore[attr-defined]

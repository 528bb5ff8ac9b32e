"""Minimisation against fakes: what each role sees of the demo plan, that a part sent back
keeps what the caller cannot see (in place), that a hidden item answers like a missing
one, and that revisions describe the caller's part."""

from __future__ import annotations

import dataclasses

import pytest

from careplan import demo, minimisation
from careplan.deps import Deps
from careplan.merge import describe
from careplan.models import Action, ActionKind, Goal, PlanView
from careplan.policy import Role, role_on
from careplan.use_cases import plan_items, plans, referral_links, revisions
from careplan.use_cases.plan_items import ACTION, GOAL, Edit, Op
from servicekit.auth import Principal
from servicekit.errors import DomainError
from servicekit.paging import PageRequest

from .. import fakes
from ..fakes import COACH, GP, NURSE, PATIENT, SPECIALIST, fake_deps, principal

OFFICER = principal("ambtenaar.mulder", roles={"municipality-officer"}, organisation="gm-eindhoven")
SPORT_COACH = principal("bsc.visser", roles={"sport-coach"}, organisation="gm-eindhoven")
OTHER_GP = principal("dr.devries", roles={"gp"}, organisation="gp-het-anker")


def _demo() -> Deps:
    """The demo plan, its GLI action following its referral to BeweegFit."""
    deps = fake_deps()
    demo.seed(deps)
    referral_links.apply_referral_event(
        deps,
        fakes.referral_event(
            1, "accepted", referral=demo.DEMO_REFERRAL, target_organisation="gli-beweegfit"
        ),
    )
    return deps


def _whole(deps: Deps) -> PlanView:
    return plans.get_care_plan(deps, GP, "p-0001")


@pytest.mark.parametrize(
    ("who", "whole"),
    [
        (PATIENT, True),
        (GP, True),
        (NURSE, True),
        (SPECIALIST, True),
        (OTHER_GP, True),
        (COACH, False),
        (OFFICER, False),
        (SPORT_COACH, False),
    ],
)
def test_who_sees_the_whole_plan(who: Principal, whole: bool) -> None:
    role = role_on(who, "p-0001", "gp-de-linde", None)
    assert (minimisation.viewer_of(who, role) is None) is whole


def test_an_informal_carer_sees_the_whole_plan_under_the_patients_mandate() -> None:
    assert minimisation.viewer_of(fakes.CARER, Role.INFORMAL_CARER) is None


def test_the_provider_sees_its_referral_the_goal_it_serves_and_no_persons_of_others() -> None:
    deps = _demo()
    whole, part = _whole(deps), plans.get_care_plan(deps, COACH, "p-0001")
    assert (part.version, part.etag) == (whole.version, whole.etag)
    content = part.content
    assert content.what_matters == whole.content.what_matters
    assert content.status == whole.content.status
    # The action of the referral addressed to it, without the referrer's person.
    assert [a.id for a in content.actions] == ["gli"]
    assert whole.content.actions[0].responsible_person == "dr. Jansen"
    assert content.actions[0].responsible_person == ""
    assert content.actions[0].referral_state == whole.content.actions[0].referral_state
    # The goal that action serves, without the diagnosis it addresses.
    assert [g.id for g in content.goals] == ["walk"]
    assert content.goals[0].addresses == [] and whole.content.goals[0].addresses == ["dm2"]
    assert content.conditions == [] and content.informal_carers == []
    assert content.evaluations == []
    assert content.consult_preparation.topics == []
    # Every participating organisation, persons of its own only.
    assert [(p.organisation, p.persons) for p in content.participants] == [
        ("gp-de-linde", []),
        ("hosp-catharina", []),
        ("gli-beweegfit", []),
    ]


def test_a_municipality_without_actions_sees_what_matters_and_who_takes_part() -> None:
    deps = _demo()
    part = plans.get_care_plan(deps, OFFICER, "p-0001").content
    assert part.what_matters and part.participants
    assert (part.goals, part.actions, part.evaluations, part.conditions) == ([], [], [], [])


def test_the_provider_sees_evaluation_moments_it_takes_part_in_and_its_persons() -> None:
    deps = _demo()
    whole = _whole(deps)
    content = dataclasses.replace(whole.content)
    content.evaluations = [
        *whole.content.evaluations,
        dataclasses.replace(
            whole.content.evaluations[0], id="gli-review", organisation="gli-beweegfit"
        ),
    ]
    content.participants = [
        dataclasses.replace(p, persons=["coach De Groot"]) if p.id == "gli" else p
        for p in whole.content.participants
    ]
    whole = plans.update_care_plan(
        deps, GP, "p-0001", content, ["evaluations", "participants"], whole.etag
    )
    part = plans.get_care_plan(deps, COACH, "p-0001").content
    assert [e.id for e in part.evaluations] == ["gli-review"]
    assert [p.persons for p in part.participants] == [[], [], ["coach De Groot"]]


def test_the_providers_part_sent_back_keeps_every_hidden_item_in_its_place() -> None:
    deps = _demo()
    before = _whole(deps)
    part = plans.get_care_plan(deps, COACH, "p-0001")
    own = Action(description="Wandelgroep", kind=ActionKind.CONSULT)
    mine = Goal(description="Fietsen naar de training", owner="organisations/gli-beweegfit")
    sent = dataclasses.replace(
        part.content,
        actions=[*part.content.actions, own],
        goals=[*part.content.goals, mine],
    )
    answer = plans.update_care_plan(deps, COACH, "p-0001", sent, ["goals", "actions"], part.etag)
    assert [a.id for a in answer.content.actions] == ["gli", answer.content.actions[1].id]
    after = _whole(deps)
    assert after.version == before.version + 1
    # The referrer's person, the diagnosis and the hidden goal and action are untouched.
    assert after.content.actions[:2] == before.content.actions
    assert after.content.actions[2].responsible_organisation == "gli-beweegfit"
    assert after.content.goals[:2] == before.content.goals
    assert after.content.goals[2].owner == "organisations/gli-beweegfit"
    # Sending the part back unchanged changes nothing at all.
    part = plans.get_care_plan(deps, COACH, "p-0001")
    plans.update_care_plan(deps, COACH, "p-0001", part.content, ["goals", "actions"], part.etag)
    again = _whole(deps)
    assert (again.content.goals, again.content.actions) == (
        after.content.goals,
        after.content.actions,
    )
    history = revisions.list_revisions(deps, GP, "p-0001", PageRequest(50)).items
    assert history[-1].change_summary == "no change"


def test_the_provider_removing_its_own_action_keeps_the_others() -> None:
    deps = _demo()
    part = plans.get_care_plan(deps, COACH, "p-0001")
    own = Action(id="walk-group", description="Wandelgroep", kind=ActionKind.CONSULT)
    added = plan_items.edit_item(
        deps, COACH, "p-0001", Edit(ACTION, Op.CREATE, item=own), part.etag
    )
    removed = plans.update_care_plan(
        deps,
        COACH,
        "p-0001",
        dataclasses.replace(added.content, actions=added.content.actions[:1]),
        ["actions"],
        added.etag,
    )
    assert [a.id for a in removed.content.actions] == ["gli"]
    assert [a.id for a in _whole(deps).content.actions] == ["gli", "checkup"]


def _refusal(deps: Deps, edit: Edit) -> tuple[type[Exception], str, str, dict[str, str]]:
    etag = _whole(deps).etag
    with pytest.raises(DomainError) as caught:
        plan_items.edit_item(deps, COACH, "p-0001", edit, etag)
    e = caught.value
    metadata = {k: v.replace(edit.item_id, "<id>") for k, v in (e.metadata or {}).items()}
    return type(e), str(e), e.reason, metadata


@pytest.mark.parametrize(
    ("kind", "hidden", "item"),
    [
        (GOAL, "hba1c", Goal(description="Geraden")),
        (ACTION, "checkup", Action(description="Geraden")),
    ],
)
@pytest.mark.parametrize("op", [Op.UPDATE, Op.DELETE])
def test_an_item_the_provider_cannot_see_answers_like_a_missing_one(
    kind: plan_items.Kind, hidden: str, item: Goal | Action, op: Op
) -> None:
    deps = _demo()
    given = item if op is Op.UPDATE else None
    fields = ["description"] if op is Op.UPDATE else None
    seen = _refusal(deps, Edit(kind, op, hidden, given, fields))
    missing = _refusal(deps, Edit(kind, op, "no-such-item", given, fields))
    assert seen == missing
    assert seen[2] == f"{kind.reason_noun}_NOT_FOUND"


def test_describe_words_a_change_as_the_merge_does() -> None:
    deps = _demo()
    whole = _whole(deps)
    content = dataclasses.replace(
        whole.content, goals=[*whole.content.goals, Goal(id="x", description="Iets")]
    )
    assert minimisation.minimise(content, None) is content
    assert describe(whole.content, content) == ("goals: 1 added", ["goals"])
    assert describe(whole.content, whole.content) == ("", [])


def test_revisions_describe_the_providers_part_and_name_only_its_own_authors() -> None:
    deps = _demo()
    whole = _whole(deps)
    checkup = dataclasses.replace(whole.content.actions[1], schedule="FREQ=MONTHLY")
    plan_items.edit_item(
        deps, GP, "p-0001", Edit(ACTION, Op.UPDATE, "checkup", checkup, ["schedule"]), whole.etag
    )
    part = plans.get_care_plan(deps, COACH, "p-0001")
    own = Action(description="Wandelgroep", kind=ActionKind.CONSULT, goals=["walk"])
    plan_items.edit_item(deps, COACH, "p-0001", Edit(ACTION, Op.CREATE, item=own), part.etag)
    full = revisions.list_revisions(deps, GP, "p-0001", PageRequest(50)).items
    seen = revisions.list_revisions(deps, COACH, "p-0001", PageRequest(50)).items
    assert [r.version for r in seen] == [r.version for r in full]
    by_version = {r.version: r for r in seen}
    gp_edit, coach_edit = full[-2], full[-1]
    assert gp_edit.change_summary == "actions: 1 changed"
    assert by_version[gp_edit.version].change_summary == "no visible change"
    assert by_version[gp_edit.version].changed_fields == []
    assert by_version[gp_edit.version].author == ""
    assert by_version[coach_edit.version].change_summary == "actions: 1 added"
    assert by_version[coach_edit.version].author == COACH.subject
    # The referral event (the service's own write) made the GLI action visible to it.
    consumer = by_version[2]
    assert consumer.author == referral_links.CONSUMER_AUTHOR
    assert consumer.change_summary == "goals: 1 added; actions: 1 added"
    # A second page starts from the version before it.
    second = revisions.list_revisions(
        deps, COACH, "p-0001", PageRequest(50, {"after": coach_edit.version - 1})
    ).items
    assert second == [by_version[coach_edit.version]]

"""Minimisation: how much of a care plan a caller sees, once identity permitted the access.

identity's ``Authorize`` (care relationship plus the patient's consent for the care-plan data
category) decides *whether* a caller reads the plan; these rules decide *how much* of it the
answer holds, as identity's own minimisation does for ``GetPatient`` (the service README has
the table):

- the patient, an informal carer the patient mandated, the coordinating practice and every
  other clinician (gp, practice nurse, specialist: the hospital) see the whole plan;
- anyone else identity lets read (a lifestyle provider, sport coach or municipality
  officer) sees its **part**: the plan's status and what matters to the patient; the goals
  its organisation owns and the goals its actions serve; its organisation's actions and the
  actions of referrals addressed to it (the referral's target, learnt from referral's
  events); the evaluation moments its organisation takes part in; the participating
  organisations with their roles, but no person of another organisation (participants'
  persons, another organisation's responsible person, the authors of progress entries);
  and no conditions (diagnoses), informal carers or consult preparation (the patient's
  consult with the practice).

Hidden items are not shown as removed: a caller sending its part back (``UpdateCarePlan``'s
whole lists, or one item) leaves them untouched (:func:`careplan.merge.merge` keeps them), and
an item it cannot see answers exactly like one that does not exist.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from careplan.models import Action, ConsultPreparation, Goal, PlanContent, ProgressEntry
from careplan.policy import Role
from servicekit.auth import Principal

# Authors that are services, not persons (the referral-event consumer).
SERVICE_AUTHOR_PREFIX = "careplan:"


@dataclass(frozen=True)
class Viewer:
    """A caller who sees only its part of a plan: its organisation and its own user id."""

    organisation_id: str
    subject: str


def viewer_of(principal: Principal, role: Role) -> Viewer | None:
    """The part-viewer the (already authorized) caller is, None when it sees the whole plan."""
    if role in (Role.PATIENT, Role.INFORMAL_CARER, Role.COORDINATING_PRACTITIONER):
        return None
    if principal.is_clinician:
        return None
    return Viewer(principal.organisation.removeprefix("organisations/"), principal.subject)


@dataclass(frozen=True)
class Hidden:
    """The items of a plan a viewer does not see, by id, per list group."""

    goals: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    evaluations: frozenset[str] = frozenset()
    conditions: frozenset[str] = frozenset()
    # The viewer's organisation: another's responsible person is left out of its view.
    organisation_id: str = ""


def _own_action(action: Action, org: str) -> bool:
    if not org:
        return False
    target = action.referral_state.target_organisation if action.referral_state else ""
    return org in (action.responsible_organisation, target)


def hidden_of(content: PlanContent, viewer: Viewer) -> Hidden:
    """What of ``content`` the viewer does not see."""
    org = viewer.organisation_id
    actions = [a for a in content.actions if _own_action(a, org)]
    served = {g for a in actions for g in a.goals}
    own_owner = f"organisations/{org}" if org else None
    goals = {g.id for g in content.goals if g.owner == own_owner or g.id in served}
    seen_actions = {a.id for a in actions}
    return Hidden(
        goals=frozenset(g.id for g in content.goals if g.id not in goals),
        actions=frozenset(a.id for a in content.actions if a.id not in seen_actions),
        evaluations=frozenset(
            e.id for e in content.evaluations if not org or e.organisation != org
        ),
        conditions=frozenset(c.id for c in content.conditions),
        organisation_id=org,
    )


def minimise(content: PlanContent, viewer: Viewer | None) -> PlanContent:
    """The part of ``content`` the viewer sees (``content`` itself for a whole-plan viewer)."""
    if viewer is None:
        return content
    hidden = hidden_of(content, viewer)
    org = viewer.organisation_id
    return PlanContent(
        status=content.status,
        what_matters=list(content.what_matters),
        conditions=[],
        participants=[
            dataclasses.replace(p, persons=list(p.persons) if org and p.organisation == org else [])
            for p in content.participants
        ],
        informal_carers=[],
        goals=[_goal(g, hidden, viewer) for g in content.goals if g.id not in hidden.goals],
        actions=[_action(a, hidden, org) for a in content.actions if a.id not in hidden.actions],
        evaluations=[
            dataclasses.replace(e) for e in content.evaluations if e.id not in hidden.evaluations
        ],
        consult_preparation=ConsultPreparation(),
    )


def _goal(goal: Goal, hidden: Hidden, viewer: Viewer) -> Goal:
    return dataclasses.replace(
        goal,
        addresses=[c for c in goal.addresses if c not in hidden.conditions],
        progress=[_entry(e, viewer) for e in goal.progress],
    )


def _entry(entry: ProgressEntry, viewer: Viewer) -> ProgressEntry:
    if entry.author == viewer.subject or entry.author.startswith(SERVICE_AUTHOR_PREFIX):
        return dataclasses.replace(entry)
    return dataclasses.replace(entry, author="")


def _action(action: Action, hidden: Hidden, org: str) -> Action:
    own = bool(org) and action.responsible_organisation == org
    return dataclasses.replace(
        action,
        responsible_person=action.responsible_person if own else "",
        goals=[g for g in action.goals if g not in hidden.goals],
    )


def restore_goal(old: Goal, sent: Goal, hidden: Hidden) -> None:
    """A visible goal sent back by a part-viewer gets back what its view left out (the
    conditions it addresses that the viewer does not see)."""
    kept = [c for c in old.addresses if c in hidden.conditions]
    sent.addresses = kept + [c for c in sent.addresses if c not in kept]


def restore_action(old: Action, sent: Action, hidden: Hidden) -> None:
    """A visible action sent back by a part-viewer gets back what its view left out (the
    goals it serves that the viewer does not see, and another organisation's responsible
    person when none was sent)."""
    kept = [g for g in old.goals if g in hidden.goals]
    sent.goals = kept + [g for g in sent.goals if g not in kept]
    own = bool(hidden.organisation_id) and old.responsible_organisation == hidden.organisation_id
    if not own and not sent.responsible_person:
        sent.responsible_person = old.responsible_person

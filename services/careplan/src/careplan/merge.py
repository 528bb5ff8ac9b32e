"""The merge of an update (or a create) into a plan: each field group named by the mask is
taken from the incoming plan, checked item by item against the caller's scope (see
:mod:`careplan.policy`), and validated; every violation names its field."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from careplan import errors
from careplan.minimisation import Hidden, restore_action, restore_goal
from careplan.models import ActivityStatus, PlanContent
from careplan.policy import FieldGroup, Role, Scope
from servicekit import names
from servicekit.errors import PermissionDenied, Violations

MAX_TEXT = 2000
MAX_ITEMS = 200

# The request field of item ``index`` of a list group (None: of the list itself).
Where = Callable[[str, int | None], str]


def in_care_plan(group: str, index: int | None) -> str:
    """Where an item sits in an UpdateCarePlan request: ``care_plan.goals[2]``."""
    return f"care_plan.{group}" if index is None else f"care_plan.{group}[{index}]"


@dataclass(frozen=True)
class Actor:
    """The writer of an update, as the merge needs them."""

    role: Role
    user: str
    organisation_id: str
    patient_id: str
    default_goal_owner: str

    @property
    def self_owner(self) -> str:
        if self.role is Role.PATIENT:
            return f"patients/{self.patient_id}"
        return f"organisations/{self.organisation_id}" if self.organisation_id else ""

    def owns(self, owner: str) -> bool:
        return bool(owner) and owner == self.self_owner

    def owns_organisation(self, org_id: str) -> bool:
        return bool(org_id) and org_id == self.organisation_id


def merge(
    current: PlanContent,
    incoming: PlanContent,
    scopes: dict[FieldGroup, Scope],
    actor: Actor,
    now: dt.datetime,
    *,
    plan_create_time: dt.datetime,
    new_id: Callable[[], str],
    where: Where | None = None,
    hidden: Hidden | None = None,
) -> tuple[PlanContent, str, list[str]]:
    """``current`` with the groups in ``scopes`` taken from ``incoming``, checked item by
    item against the caller's scope. Returns the new content, a change summary and the
    groups that changed. ``where`` names the request field of a list group's item (or, for
    no index, of the list) in violations and refusals; by default ``care_plan.goals[2]``.

    ``hidden`` (:mod:`careplan.minimisation`) names the goals and actions the caller does not
    see: ``incoming`` holds only the caller's part, so those items stay exactly as they are,
    in their places; an id of one of them is unknown to the caller, as if missing (a new
    item under it is ``ALREADY_EXISTS``, as for any id in use), and a visible item gets back
    what the caller's view left out of it. Only whole-plan viewers write the other list
    groups (:mod:`careplan.policy`)."""
    m = _Merge(
        copy.deepcopy(current),
        copy.deepcopy(incoming),
        actor,
        now,
        plan_create_time,
        new_id,
        where or in_care_plan,
        hidden or Hidden(),
    )
    parts: list[str] = []
    changed: list[str] = []
    for group in FieldGroup:
        if group not in scopes:
            continue
        note = MERGERS[group](m, scopes[group])
        m.v.raise_if_any()
        if note is not None:
            changed.append(group.value)
            parts.append(f"{group.value}: {note}" if note else group.value)
    return m.new, "; ".join(parts), changed


@dataclass
class _Merge:
    """One merge in progress: ``new`` starts as a copy of ``current``."""

    current: PlanContent
    incoming: PlanContent
    actor: Actor
    now: dt.datetime
    plan_create_time: dt.datetime
    new_id: Callable[[], str]
    where: Where
    hidden: Hidden
    v: Violations = field(default_factory=Violations)
    new: PlanContent = field(init=False)

    def __post_init__(self) -> None:
        self.new = copy.deepcopy(self.current)

    # Each merger returns None when its group did not change, else a short summary.

    def what_matters(self, scope: Scope) -> str | None:
        _check_texts(self.incoming.what_matters, "care_plan.what_matters", self.v, required=True)
        self.new.what_matters = list(self.incoming.what_matters)
        return None if self.new.what_matters == self.current.what_matters else ""

    def conditions(self, scope: Scope) -> str | None:
        for i, c in enumerate(self.incoming.conditions):
            _text(c.display, f"care_plan.conditions[{i}].display", self.v, required=True)
            c.id = c.id or self.new_id()
        _unique_ids(self.incoming.conditions, "conditions", self.v, self.where)
        self.new.conditions = self.incoming.conditions
        return _diff(self.current.conditions, self.new.conditions)

    def participants(self, scope: Scope) -> str | None:
        for i, p in enumerate(self.incoming.participants):
            if p.role is None:
                self.v.add(
                    f"care_plan.participants[{i}].role", "is required", "PARTICIPANT_ROLE_REQUIRED"
                )
            if not p.organisation:
                self.v.add(
                    f"care_plan.participants[{i}].organisation",
                    "is required",
                    "ORGANISATION_REQUIRED",
                )
            p.id = p.id or self.new_id()
        _unique_ids(self.incoming.participants, "participants", self.v, self.where)
        self.new.participants = self.incoming.participants
        return _diff(self.current.participants, self.new.participants)

    def informal_carers(self, scope: Scope) -> str | None:
        mandated = {c.user: c for c in self.current.informal_carers}
        for i, c in enumerate(self.incoming.informal_carers):
            if not c.user.strip():
                self.v.add(
                    f"care_plan.informal_carers[{i}].user", "is required", "CARER_USER_REQUIRED"
                )
            before = mandated.get(c.user)
            c.id = c.id or (before.id if before else self.new_id())
            c.mandate_time = before.mandate_time if before else self.now
        _unique_ids(self.incoming.informal_carers, "informal_carers", self.v, self.where)
        self.new.informal_carers = self.incoming.informal_carers
        return _diff(self.current.informal_carers, self.new.informal_carers)

    def goals(self, scope: Scope) -> str | None:
        _merge_goals(self, scope)
        before = [g.without_progress() for g in self.current.goals]
        if [g.without_progress() for g in self.new.goals] == before:
            return None
        return _counts(self.current.goals, self.new.goals)

    def progress(self, scope: Scope) -> str | None:
        added = _merge_progress(self, scope)
        return f"{added} added" if added else None

    def actions(self, scope: Scope) -> str | None:
        _merge_actions(self, scope)
        return _diff(self.current.actions, self.new.actions)

    def evaluations(self, scope: Scope) -> str | None:
        for i, e in enumerate(self.incoming.evaluations):
            prefix = self.where("evaluations", i)
            if e.review_time is None:
                self.v.add(f"{prefix}.review_time", "is required", "REVIEW_TIME_REQUIRED")
            _text(e.outcome, f"{prefix}.outcome", self.v)
            e.id = e.id or self.new_id()
            e.organisation = e.organisation or self.actor.organisation_id
        _unique_ids(self.incoming.evaluations, "evaluations", self.v, self.where)
        self.new.evaluations = self.incoming.evaluations
        return _diff(self.current.evaluations, self.new.evaluations)

    def consult_preparation(self, scope: Scope) -> str | None:
        prep, before = self.incoming.consult_preparation, self.current.consult_preparation
        _check_texts(prep.topics, "care_plan.consult_preparation.topics", self.v, required=True)
        _check_texts(
            prep.questions, "care_plan.consult_preparation.questions", self.v, required=True
        )
        self.new.consult_preparation.topics = list(prep.topics)
        self.new.consult_preparation.questions = list(prep.questions)
        return None if (prep.topics, prep.questions) == (before.topics, before.questions) else ""

    def consult_agenda(self, scope: Scope) -> str | None:
        prep, before = self.incoming.consult_preparation, self.current.consult_preparation
        _check_texts(prep.agenda, "care_plan.consult_preparation.agenda", self.v, required=True)
        self.new.consult_preparation.agenda = list(prep.agenda)
        self.new.consult_preparation.next_consult_time = prep.next_consult_time
        same = (prep.agenda, prep.next_consult_time) == (before.agenda, before.next_consult_time)
        return None if same else ""

    def status(self, scope: Scope) -> str | None:
        if self.incoming.status is None:
            self.v.add("care_plan.status", "is required", "STATUS_REQUIRED")
            return None
        self.new.status = self.incoming.status
        return None if self.new.status == self.current.status else self.new.status.value


MERGERS: dict[FieldGroup, Callable[[_Merge, Scope], str | None]] = {
    FieldGroup.WHAT_MATTERS: _Merge.what_matters,
    FieldGroup.CONDITIONS: _Merge.conditions,
    FieldGroup.PARTICIPANTS: _Merge.participants,
    FieldGroup.INFORMAL_CARERS: _Merge.informal_carers,
    FieldGroup.GOALS: _Merge.goals,
    FieldGroup.GOAL_PROGRESS: _Merge.progress,
    FieldGroup.ACTIONS: _Merge.actions,
    FieldGroup.EVALUATIONS: _Merge.evaluations,
    FieldGroup.CONSULT_PREPARATION: _Merge.consult_preparation,
    FieldGroup.CONSULT_AGENDA: _Merge.consult_agenda,
    FieldGroup.STATUS: _Merge.status,
}


def describe(before: PlanContent, after: PlanContent) -> tuple[str, list[str]]:
    """The change summary and changed groups from ``before`` to ``after``, worded as a merge
    words them: what a revision says to a caller who sees only part of each version."""
    bp, ap = before.consult_preparation, after.consult_preparation
    progress = sum(len(g.progress) for g in after.goals) - sum(
        len(g.progress) for g in before.goals if after.goal(g.id) is not None
    )
    notes: dict[FieldGroup, str | None] = {
        FieldGroup.WHAT_MATTERS: None if before.what_matters == after.what_matters else "",
        FieldGroup.CONDITIONS: _diff(before.conditions, after.conditions),
        FieldGroup.PARTICIPANTS: _diff(before.participants, after.participants),
        FieldGroup.INFORMAL_CARERS: _diff(before.informal_carers, after.informal_carers),
        FieldGroup.GOALS: _diff(
            [g.without_progress() for g in before.goals],
            [g.without_progress() for g in after.goals],
        ),
        FieldGroup.GOAL_PROGRESS: f"{progress} added" if progress > 0 else None,
        FieldGroup.ACTIONS: _diff(before.actions, after.actions),
        FieldGroup.EVALUATIONS: _diff(before.evaluations, after.evaluations),
        FieldGroup.CONSULT_PREPARATION: None
        if (bp.topics, bp.questions) == (ap.topics, ap.questions)
        else "",
        FieldGroup.CONSULT_AGENDA: None
        if (bp.agenda, bp.next_consult_time) == (ap.agenda, ap.next_consult_time)
        else "",
        FieldGroup.STATUS: None
        if before.status == after.status
        else (after.status.value if after.status else ""),
    }
    parts = [f"{g.value}: {n}" if n else g.value for g, n in notes.items() if n is not None]
    return "; ".join(parts), [g.value for g, n in notes.items() if n is not None]


def _diff(before: Sequence[Any], after: Sequence[Any]) -> str | None:
    return None if list(before) == list(after) else _counts(before, after)


def _merge_goals(m: _Merge, scope: Scope) -> None:
    current, incoming, new, actor, now, v = m.current, m.incoming, m.new, m.actor, m.now, m.v
    new_id, where, hidden = m.new_id, m.where, m.hidden
    old_by_id = {g.id: g for g in current.goals if g.id not in hidden.goals}
    result = []
    for i, given in enumerate(incoming.goals):
        prefix = where("goals", i)
        _text(given.description, f"{prefix}.description", v, required=True)
        _text(given.notes, f"{prefix}.notes", v)
        old = _known(old_by_id, given, hidden, "goal", restore_goal)
        sent_id = given.id
        given.id = given.id or new_id()  # _merge_progress finds the goal by this id
        goal = dataclasses.replace(given)
        if old is None:
            goal.owner = goal.owner or actor.default_goal_owner or actor.self_owner
            goal.create_time = now
            goal.progress = []
            if scope is Scope.OWN and not actor.owns(goal.owner):
                raise _goal_not_owned("a new goal must be owned by its author", sent_id, prefix)
        else:
            goal.owner = goal.owner or old.owner
            goal.create_time = old.create_time
            goal.progress = list(old.progress)
            if (
                not old.same_content(goal)
                and scope is Scope.OWN
                and not (actor.owns(old.owner) and actor.owns(goal.owner))
            ):
                raise _goal_not_owned("this goal is owned by someone else", goal.id, prefix)
        if not goal.owner.startswith(("patients/", "organisations/")):
            v.add(f"{prefix}.owner", "must be patients/{p} or organisations/{o}", "INVALID_OWNER")
        created = goal.create_time or now
        if (
            goal.target is not None
            and goal.target.due_time is not None
            and goal.target.due_time < created
        ):
            v.add(
                f"{prefix}.target.due_time",
                "is before the goal was created",
                "DUE_DATE_BEFORE_CREATION",
            )
        if goal.target is not None:
            _finite(goal.target.low, f"{prefix}.target.low", v)
            _finite(goal.target.high, f"{prefix}.target.high", v)
        if (
            goal.target is not None
            and goal.target.low is not None
            and goal.target.high is not None
            and goal.target.low > goal.target.high
        ):
            v.add(f"{prefix}.target.low", "is above the high bound", "INVALID_TARGET_RANGE")
        result.append(goal)
    kept = {g.id for g in result}
    for old in current.goals:
        if old.id not in kept | hidden.goals and scope is Scope.OWN and not actor.owns(old.owner):
            raise _goal_not_owned("this goal is owned by someone else", old.id)
    _unique_ids(result, "goals", v, where)
    new.goals = _with_hidden(current.goals, result, hidden.goals)


def _merge_progress(m: _Merge, scope: Scope) -> int:
    """Appends the new progress entries of each goal named; existing entries are immutable."""
    current, incoming, new, actor, now, v = m.current, m.incoming, m.new, m.actor, m.now, m.v
    new_id = m.new_id
    added = 0
    for i, goal in enumerate(incoming.goals):
        target = new.goal(goal.id) if goal.id and goal.id not in m.hidden.goals else None
        if target is None:
            v.add(f"care_plan.goals[{i}].id", "names no goal of this plan", "UNKNOWN_GOAL")
            continue
        before = current.goal(goal.id)
        known = {e.id: e for e in (before.progress if before else [])}
        fresh = []
        for j, entry in enumerate(goal.progress):
            field_name = f"care_plan.goals[{i}].progress[{j}]"
            if entry.id and entry.id in known:
                if not known[entry.id].same_entry(entry):
                    v.add(field_name, "progress entries cannot be changed", "PROGRESS_APPEND_ONLY")
                continue
            _text(entry.text, f"{field_name}.text", v, required=True)
            _finite(entry.value, f"{field_name}.value", v)
            fresh.append(
                dataclasses.replace(entry, id=new_id(), author=actor.user, record_time=now)
            )
        if fresh and scope is Scope.OWN and not actor.owns(target.owner):
            raise _goal_not_owned(
                "this goal is owned by someone else", target.id, f"care_plan.goals[{i}]"
            )
        target.progress = [*target.progress, *fresh]
        added += len(fresh)
    return added


def _merge_actions(m: _Merge, scope: Scope) -> None:
    current, incoming, new, actor, now, v = m.current, m.incoming, m.new, m.actor, m.now, m.v
    new_id, where, plan_create_time, hidden = m.new_id, m.where, m.plan_create_time, m.hidden
    old_by_id = {a.id: a for a in current.actions if a.id not in hidden.actions}
    result = []
    for i, action in enumerate(incoming.actions):
        prefix = where("actions", i)
        _known(old_by_id, action, hidden, "action", restore_action)
        _text(action.description, f"{prefix}.description", v, required=True)
        if action.kind is None:
            v.add(f"{prefix}.kind", "is required", "ACTION_KIND_REQUIRED")
        action.responsible_organisation = action.responsible_organisation or actor.organisation_id
        if not action.responsible_organisation:
            v.add(f"{prefix}.responsible_organisation", "is required", "ORGANISATION_REQUIRED")
        if action.referral:
            parts = action.referral.split("/")
            if (
                len(parts) != 4
                or parts[0] != "patients"
                or parts[1] != actor.patient_id
                or parts[2] != "referrals"
                or not parts[3]
            ):
                v.add(
                    f"{prefix}.referral",
                    "must be a referral of this patient",
                    "INVALID_REFERRAL_NAME",
                )
        old = old_by_id.get(action.id) if action.id else None
        if action.due_time is not None and action.due_time < (
            plan_create_time if old else min(now, plan_create_time)
        ):
            v.add(
                f"{prefix}.due_time", "is before the plan was created", "DUE_DATE_BEFORE_CREATION"
            )
        if old is None:
            sent_id = action.id
            action.id = action.id or new_id()
            action.status = action.status or ActivityStatus.NOT_STARTED
            action.referral_state = None
            if scope is Scope.OWN and not actor.owns_organisation(action.responsible_organisation):
                raise _action_not_own("an organisation adds only its own actions", sent_id, prefix)
        else:
            action.status = action.status or old.status
            action.referral_state = old.referral_state if old.referral == action.referral else None
            if (
                not old.same_content(action)
                and scope is Scope.OWN
                and not (
                    actor.owns_organisation(old.responsible_organisation)
                    and actor.owns_organisation(action.responsible_organisation)
                )
            ):
                raise _action_not_own(
                    "this action belongs to another organisation", action.id, prefix
                )
        result.append(action)
    kept = {a.id for a in result}
    for old in current.actions:
        if (
            old.id not in hidden.actions
            and old.id not in kept
            and scope is Scope.OWN
            and not actor.owns_organisation(old.responsible_organisation)
        ):
            raise _action_not_own("this action belongs to another organisation", old.id)
    _unique_ids(result, "actions", v, where)
    new.actions = _with_hidden(current.actions, result, hidden.actions)


def _with_hidden(current: Sequence[Any], sent: list[Any], hidden: frozenset[str]) -> list[Any]:
    """The list a part-viewer's ``sent`` list makes of ``current``: each hidden item stays in
    its place, the places of the visible ones take the sent items in order (extra ones go
    at the end). A part sent back unchanged leaves the list as it was."""
    if not hidden:
        return sent
    rest = iter(sent)
    merged: list[Any] = []
    for item in current:
        if item.id in hidden:
            merged.append(item)
        else:
            taken = next(rest, None)
            if taken is not None:
                merged.append(taken)
    merged.extend(rest)
    return merged


def _known(
    old_by_id: dict[str, Any],
    sent: Any,
    hidden: Hidden,
    noun: str,
    restore: Callable[[Any, Any, Hidden], None],
) -> Any:
    """The current, visible item ``sent`` names (None: a new item), given back what the
    caller's view left out of it; an id of an item the caller does not see is in use."""
    if sent.id in getattr(hidden, f"{noun}s"):
        raise _exists(noun, sent.id)
    old = old_by_id.get(sent.id) if sent.id else None
    if old is not None:
        restore(old, sent, hidden)
    return old


def _exists(noun: str, item_id: str) -> errors.ItemExists:
    """An id in use that the caller cannot see: the answer a Create of an item under that id
    gives (the id is taken; nothing of the item is told)."""
    return errors.ItemExists(
        f"the plan already has this {noun.replace('_', ' ')}",
        reason=f"{noun.upper()}_EXISTS",
        metadata={f"{noun}_id": item_id},
    )


def _text(value: str, field_name: str, v: Violations, *, required: bool = False) -> None:
    if required and not value.strip():
        v.add(field_name, "is required", "TEXT_REQUIRED")
    elif len(value) > MAX_TEXT:
        v.add(field_name, f"at most {MAX_TEXT} characters", "TEXT_TOO_LONG")


def _finite(value: float | None, field_name: str, v: Violations) -> None:
    """A measured or target value is a number: not NaN, not infinite."""
    if value is not None and not math.isfinite(value):
        v.add(field_name, "must be a finite number", "INVALID_NUMBER")


def _check_texts(values: list[str], field_name: str, v: Violations, *, required: bool) -> None:
    if len(values) > MAX_ITEMS:
        v.add(field_name, f"at most {MAX_ITEMS} items", "TOO_MANY_ITEMS")
    for i, value in enumerate(values):
        _text(value, f"{field_name}[{i}]", v, required=required)


def _unique_ids(items: Sequence[Any], group: str, v: Violations, where: Where) -> None:
    if len(items) > MAX_ITEMS:
        v.add(where(group, None), f"at most {MAX_ITEMS} items", "TOO_MANY_ITEMS")
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not names.valid_id(item.id):
            v.add(
                f"{where(group, i)}.id", "2-63 lower-case letters, digits and dashes", "INVALID_ID"
            )
        if item.id in seen:
            v.add(f"{where(group, i)}.id", "is used twice", "DUPLICATE_ID")
        seen.add(item.id)


def _goal_not_owned(message: str, goal_id: str, field: str = "") -> PermissionDenied:
    """GOAL_NOT_OWNED naming the goal: its id (unless a new goal came without one) and where
    it sits in the request (unless the request removes it)."""
    metadata = {k: v for k, v in (("goal_id", goal_id), ("field", field)) if v}
    return PermissionDenied(message, reason="GOAL_NOT_OWNED", metadata=metadata)


def _action_not_own(message: str, action_id: str, field: str = "") -> PermissionDenied:
    """ACTION_NOT_OWN_ORGANISATION naming the action, as :func:`_goal_not_owned`."""
    metadata = {k: v for k, v in (("action_id", action_id), ("field", field)) if v}
    return PermissionDenied(message, reason="ACTION_NOT_OWN_ORGANISATION", metadata=metadata)


def _counts(before: Sequence[Any], after: Sequence[Any]) -> str:
    old = {x.id: x for x in before}
    new = {x.id: x for x in after}
    added = len(new.keys() - old.keys())
    removed = len(old.keys() - new.keys())
    changed = sum(1 for k in new.keys() & old.keys() if new[k] != old[k])
    words = [
        f"{n} {w}" for n, w in ((added, "added"), (changed, "changed"), (removed, "removed")) if n
    ]
    return ", ".join(words) or "reordered"

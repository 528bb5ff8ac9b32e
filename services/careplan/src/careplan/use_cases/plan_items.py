"""One goal, action or evaluation moment at a time: add, change or remove it by its id, at
the plan's etag, without sending anyone else's items.

An item edit is a whole-plan update of one field group in which only that item differs:
the same ``Authorize`` question (an UPDATE of the plan, one access-log entry), the same
write rule for the group (:mod:`careplan.policy`), the same etag rule (ABORTED
``ETAG_MISMATCH`` on a stale one, after PERMISSION_DENIED for a group the role may not
write), and the same item checks (:func:`careplan.merge.merge`: a party may change only
the goals it owns and the actions of its organisation; refusals name the item), written as
one new version with its revision. Violations name the request's item field
(``goal.description``). A ``request_id`` makes a retry safe: the same request again returns
the plan the first one wrote (a read of it), even though its etag is stale by then.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from careplan import errors
from careplan.deps import Deps
from careplan.minimisation import Hidden
from careplan.models import Action, EvaluationMoment, Goal, PlanView
from careplan.policy import FieldGroup, require_writable
from careplan.use_cases import versions
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument
from servicekit.idempotency import IdempotentRequest
from servicekit.identity_client import Access

Item = Goal | Action | EvaluationMoment


@dataclass(frozen=True)
class Kind:
    """A kind of plan item: its RPC noun, its list (field group) and its request field."""

    noun: str  # Goal
    group: FieldGroup  # goals
    field: str  # goal
    # The item's fields a change may name (the rest are the service's).
    changeable: tuple[str, ...]

    @property
    def reason_noun(self) -> str:
        return self.field.upper()  # GOAL, ACTION, EVALUATION_MOMENT


GOAL = Kind(
    "Goal",
    FieldGroup.GOALS,
    "goal",
    (
        "description",
        "target",
        "lifecycle_status",
        "achievement_status",
        "owner",
        "addresses",
        "notes",
    ),
)
ACTION = Kind(
    "Action",
    FieldGroup.ACTIONS,
    "action",
    (
        "description",
        "kind",
        "status",
        "responsible_organisation",
        "responsible_person",
        "schedule",
        "due_time",
        "referral",
        "goals",
    ),
)
EVALUATION_MOMENT = Kind(
    "EvaluationMoment",
    FieldGroup.EVALUATIONS,
    "evaluation_moment",
    ("review_time", "outcome", "organisation"),
)


class Op(enum.StrEnum):
    CREATE = "Create"
    UPDATE = "Update"
    DELETE = "Delete"


@dataclass(frozen=True)
class Edit:
    """One item edit: ``item_id`` names the item to change or remove (a new item's id is
    its own, possibly empty); ``item`` is the new or changed content; ``fields`` the fields
    of the item a change takes from it (None: all it may change)."""

    kind: Kind
    op: Op
    item_id: str = ""
    item: Item | None = None
    fields: Sequence[str] | None = None

    @property
    def method(self) -> str:
        return f"{self.op.value}{self.kind.noun}"


def edit_item(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    edit: Edit,
    etag: str,
    request: IdempotentRequest | None = None,
) -> PlanView:
    """Applies ``edit`` to the plan at the version ``etag`` names; the plan as written.
    ``request`` (servicekit.idempotency, for ``edit.method``) makes a retry safe."""
    fields = _fields(edit)
    expected = versions.expected_version(etag, "etag")
    replay = versions.replay(deps, principal, request)
    if replay is not None:
        return replay
    try:
        return _apply(deps, principal, patient_id, edit, fields, expected, request)
    except (errors.EtagMismatch, IntegrityError) as exc:
        # Another write came first. If it was this same request (a retry sent while the
        # first was still running), the plan it wrote; the same id for another request is
        # REQUEST_ID_REUSED; anything else is ABORTED.
        replay = versions.replay(deps, principal, request)
        if replay is not None:
            return replay
        if isinstance(exc, errors.EtagMismatch):
            raise
        raise errors.EtagMismatch("the care plan has changed; read it again") from exc


def _apply(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    edit: Edit,
    fields: Sequence[str],
    expected: int,
    request: IdempotentRequest | None,
) -> PlanView:
    """The edit, as an update of its group that identity permitted, written as the next
    version (with the request's record) if the plan is still at ``expected``."""
    view, role = versions.read_and_authorize(deps, principal, patient_id, Access.UPDATE)
    scopes = require_writable(role, [edit.kind.group])
    if expected != view.version:
        raise errors.EtagMismatch("the care plan has changed; read it again")
    hidden = versions.hidden_from(principal, role, view)
    items, index = _edited(view, edit, fields, _hidden_ids(edit.kind, hidden))
    incoming = dataclasses.replace(view.content)  # the merge reads only the edited group
    setattr(incoming, edit.kind.group.value, items)
    return versions.write_update(
        deps,
        principal,
        view,
        role,
        incoming,
        scopes,
        where=lambda g, i: edit.kind.field if i is None or i == index else f"{g}[{i}]",
        request=request,
    )


def _fields(edit: Edit) -> tuple[str, ...]:
    """The fields a change takes from the request; INVALID_ARGUMENT for a field that cannot
    be changed (checked before identity is asked: it depends on the request alone)."""
    if edit.op is not Op.UPDATE or edit.fields is None:
        return edit.kind.changeable
    paths = list(edit.fields)
    if paths == ["*"]:
        return edit.kind.changeable
    unknown = sorted(set(paths) - set(edit.kind.changeable))
    if unknown:
        raise InvalidArgument.single(
            "update_mask", f"cannot update {', '.join(unknown)}", "FIELD_NOT_UPDATABLE"
        )
    if not paths:
        raise InvalidArgument.single(
            "update_mask", "name at least one field", "UPDATE_MASK_REQUIRED"
        )
    return tuple(paths)


def _hidden_ids(kind: Kind, hidden: Hidden) -> frozenset[str]:
    """The items of ``kind`` the caller does not see (:mod:`careplan.minimisation`)."""
    return {GOAL: hidden.goals, ACTION: hidden.actions}.get(kind, hidden.evaluations)


def _edited(
    view: PlanView, edit: Edit, fields: Sequence[str], hidden: frozenset[str]
) -> tuple[list[Any], int | None]:
    """The group's list as the caller sees it with the edit applied, and the index of the
    edited item in it (None for a removal). An item the caller does not see is missing (the
    merge keeps it as it is)."""
    items: list[Any] = [
        i for i in getattr(view.content, edit.kind.group.value) if i.id not in hidden
    ]
    if edit.op is Op.CREATE:
        assert edit.item is not None
        new = dataclasses.replace(edit.item)
        if new.id and any(i.id == new.id for i in items):
            raise errors.ItemExists(
                f"the plan already has this {edit.kind.field.replace('_', ' ')}",
                reason=f"{edit.kind.reason_noun}_EXISTS",
                metadata={f"{edit.kind.field}_id": new.id},
            )
        return [*items, new], len(items)
    index = next((n for n, i in enumerate(items) if i.id == edit.item_id), None)
    if index is None:
        raise errors.ItemNotFound(
            f"the plan has no such {edit.kind.field.replace('_', ' ')}",
            reason=f"{edit.kind.reason_noun}_NOT_FOUND",
            metadata={f"{edit.kind.field}_id": edit.item_id},
        )
    if edit.op is Op.DELETE:
        return items[:index] + items[index + 1 :], None
    assert edit.item is not None
    old = items[index]
    items[index] = dataclasses.replace(old, **{f: getattr(edit.item, f) for f in fields})
    return items, index

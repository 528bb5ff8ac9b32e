"""The careplan use cases, as plain functions over a unit of work.

Every read and write of a plan first asks identity's ``Authorize`` (data category
care-plan, the plan's record holder as record holder, the caller as subject), which logs
the access. Within a permitted update, :mod:`careplan.policy` decides per field group.
Every accepted update writes a new immutable revision holding the whole plan; the etag is
the version, and the write is a compare-and-set on it, so concurrent writers never lose
an update: each one is either in the history or got ABORTED.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from careplan import errors
from careplan.clients import (
    Access,
    AccessQuestion,
    IdentityClient,
    PendingAccess,
    ReferralEvent,
)
from careplan.models import (
    ActivityStatus,
    AppliedEvent,
    CarePlanRevisionRow,
    CarePlanRow,
    Participant,
    ParticipantRole,
    PlanContent,
    PlanStatus,
    PlanView,
    ReferralState,
    RequestRecord,
    version_of_etag,
    view_from_document,
    view_to_document,
)
from careplan.policy import (
    CREATE_ROLES,
    FieldGroup,
    Role,
    Scope,
    groups_of_mask,
    require_writable,
    role_on,
)
from careplan.unit_of_work import UnitOfWork
from servicekit import idempotency, names
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument, PermissionDenied, Violations

T = TypeVar("T")
log = logging.getLogger("careplan.access")

MAX_TEXT = 2000
MAX_ITEMS = 200
REFERRAL_CONSUMER = "referral-events"
CONSUMER_AUTHOR = "careplan:referral-events"


class PlanCache:
    """Decoded plans by patient, each at the version it was read at. A read asks the database
    for the plan's current version and gets the document only if that version differs, so
    an entry is never served once a newer version is committed (by any replica)."""

    MAX_ENTRIES = 20_000

    def __init__(self) -> None:
        self._views: dict[str, PlanView] = {}

    def get(self, patient_id: str) -> PlanView | None:
        return self._views.get(patient_id)

    def put(self, view: PlanView) -> None:
        if len(self._views) >= self.MAX_ENTRIES:
            self._views.clear()
        self._views[view.patient_id] = view

    def forget(self, patient_id: str) -> None:
        self._views.pop(patient_id, None)


@dataclass
class Deps:
    uow: Callable[[], UnitOfWork]
    identity: IdentityClient
    plans: PlanCache = field(default_factory=PlanCache)
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex[:12])


@dataclass(frozen=True)
class Revision:
    patient_id: str
    version: int
    author: str
    organisation_id: str
    create_time: dt.datetime
    change_summary: str
    changed_fields: list[str]


@dataclass(frozen=True)
class Page:
    items: Sequence[Revision]
    last: int | None


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


def _org_id(principal: Principal) -> str:
    return principal.organisation.removeprefix("organisations/")


def _tenant(principal: Principal) -> str:
    return principal.care_group.removeprefix("organisations/")


# ---------------------------------------------------------------- access


@dataclass(frozen=True)
class _Question:
    """What identity is asked about an access to a plan, and the caller's role on it."""

    question: AccessQuestion
    role: Role


def _question(
    principal: Principal, patient_id: str, view: PlanView | None, access: Access
) -> _Question:
    """An informal carer is asked about under the patient's mandate."""
    holder = view.record_holder_id if view is not None else ""
    role = role_on(principal, patient_id, holder, view.content if view else None)
    if role is not Role.INFORMAL_CARER:
        return _Question(AccessQuestion(principal, patient_id, access, holder, "care-plan"), role)
    subject = Principal(
        subject=principal.subject,
        client_id=principal.client_id,
        organisation="",
        care_group=principal.care_group,
        roles=frozenset({"patient"}),
        patient=f"patients/{patient_id}",
        on_behalf_of=principal.on_behalf_of,
    )
    return _Question(
        AccessQuestion(subject, patient_id, access, holder, "informal-carer-mandate"), role
    )


@dataclass(frozen=True)
class _Asked:
    question: _Question
    answer: PendingAccess


def _ask_early(deps: Deps, principal: Principal, patient_id: str, access: Access) -> _Asked | None:
    """Sends identity the question the cached plan implies, before the plan is read, so that
    the two overlap. :func:`_authorize` uses the answer only if the plan as read implies the
    same question; otherwise it asks again, and identity logs both questions."""
    cached = deps.plans.get(patient_id)
    if cached is None:
        return None
    q = _question(principal, patient_id, cached, access)
    return _Asked(q, deps.identity.authorize_later(q.question))


def _authorize(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    view: PlanView | None,
    access: Access,
    asked: _Asked | None = None,
) -> Role:
    """Asks identity (which logs the access), or takes the answer to the same question asked
    early; PERMISSION_DENIED with identity's reason on a denial."""
    q = _question(principal, patient_id, view, access)
    if asked is not None and asked.question == q:
        decision = asked.answer.result()
    else:
        decision = deps.identity.authorize(q.question)
    _log_access(principal, patient_id, access, q.role, decision.permitted, decision.reason)
    if not decision.permitted:
        raise errors.AccessDenied("access to the care plan was refused", reason=decision.reason)
    if view is not None and view.care_group_id != _tenant(principal):
        raise errors.CarePlanNotFound("care plan not found")
    return q.role


def _log_access(
    principal: Principal, patient_id: str, access: Access, role: Role, permitted: bool, reason: str
) -> None:
    """One structured line per access: refusals at INFO, permitted accesses at DEBUG. The
    NEN 7513 entry of every access, permitted or not, is identity's."""
    level = logging.DEBUG if permitted else logging.INFO
    if not log.isEnabledFor(level):
        return
    log.log(
        level,
        "care_plan_access",
        extra={
            "patient": patient_id,
            "access": access.value,
            "role": role.value,
            "user": principal.subject,
            "organisation": principal.organisation,
            "decision": "permit" if permitted else "deny",
            "reason": reason,
        },
    )


def _load(deps: Deps, patient_id: str) -> PlanView | None:
    """The plan's current version: one statement, which returns the document only when the
    cached copy is not of that version. The view returned is shared: do not change it."""
    cached = deps.plans.get(patient_id)
    with deps.uow() as uow:
        found = uow.repo.current_plan(patient_id, cached.version if cached else 0)
    if found is None:
        deps.plans.forget(patient_id)
        return None
    version, document = found
    if document is None and cached is not None and cached.version == version:
        return cached
    assert document is not None
    view = view_from_document(document)
    deps.plans.put(view)
    return view


# ---------------------------------------------------------------- reads


def get_care_plan(deps: Deps, principal: Principal, patient_id: str, version: int = 0) -> PlanView:
    if version < 0:
        raise InvalidArgument.single("version", "must not be negative", "INVALID_VERSION")
    asked = _ask_early(deps, principal, patient_id, Access.READ)
    view = _load(deps, patient_id)
    _authorize(deps, principal, patient_id, view, Access.READ, asked)
    if view is None:
        raise errors.CarePlanNotFound("care plan not found")
    if version in (0, view.version):
        return view
    with deps.uow() as uow:
        revision = uow.repo.revision(patient_id, version)
        if revision is None:
            raise errors.RevisionNotFound("no such version of the care plan")
        return view_from_document(revision.document)


def list_revisions(
    deps: Deps, principal: Principal, patient_id: str, after: int, limit: int
) -> Page:
    view = _load(deps, patient_id)
    _authorize(deps, principal, patient_id, view, Access.READ)
    if view is None:
        raise errors.CarePlanNotFound("care plan not found")
    with deps.uow() as uow:
        rows = uow.repo.revisions(patient_id, after, limit + 1)
        more = len(rows) > limit
        items = [
            Revision(
                patient_id=r.patient_id,
                version=r.version,
                author=r.author,
                organisation_id=r.organisation_id,
                create_time=r.create_time,
                change_summary=r.change_summary,
                changed_fields=[f for f in r.changed_fields.split(",") if f],
            )
            for r in rows[:limit]
        ]
        return Page(items, items[-1].version if more and items else None)


# ---------------------------------------------------------------- create


def create_care_plan(
    deps: Deps, principal: Principal, patient_id: str, data: PlanContent, request_id: str = ""
) -> PlanView:
    """Creates the patient's one plan. The caller's organisation becomes the record holder
    and the coordinating practitioner; the caller records the plan as agreed in the consult
    (every field group except the informal carers, which only the patient mandates)."""
    idempotency.check(request_id)
    now = deps.clock()
    org_id = _org_id(principal)
    existing = _load(deps, patient_id)
    decision = deps.identity.authorize(
        AccessQuestion(principal, patient_id, Access.CREATE, org_id, "care-plan")
    )
    _log_access(
        principal,
        patient_id,
        Access.CREATE,
        Role.COORDINATING_PRACTITIONER,
        decision.permitted,
        decision.reason,
    )
    if not decision.permitted:
        raise errors.AccessDenied("access to the care plan was refused", reason=decision.reason)
    if not principal.roles & CREATE_ROLES or not org_id:
        raise errors.RoleNotPermitted("only a GP or practice nurse may create a care plan")
    if request_id:
        with deps.uow() as uow:
            record = uow.repo.request_record(principal.subject, request_id)
        if idempotency.replayed(record, "CreateCarePlan") is not None:
            if existing is None:
                raise InvalidArgument.single(
                    "request_id", "was already used for another request", "REQUEST_ID_REUSED"
                )
            return existing
    if existing is not None:
        raise errors.CarePlanExists(
            "the patient already has a care plan",
            metadata={"care_plan": f"patients/{patient_id}/carePlan"},
        )
    if data.informal_carers:
        raise errors.FieldGroupNotWritable(
            "only the patient mandates informal carers",
            metadata={
                "field_group": FieldGroup.INFORMAL_CARERS.value,
                "role": Role.COORDINATING_PRACTITIONER.value,
            },
        )
    actor = Actor(
        role=Role.COORDINATING_PRACTITIONER,
        user=principal.subject,
        organisation_id=org_id,
        patient_id=patient_id,
        default_goal_owner=f"patients/{patient_id}",
    )
    incoming = copy.deepcopy(data)
    if incoming.status is None:
        incoming.status = PlanStatus.ACTIVE
    scopes: dict[FieldGroup, Scope] = {
        g: Scope.ALL for g in FieldGroup if g is not FieldGroup.INFORMAL_CARERS
    }
    content, _, _ = merge(
        PlanContent(), incoming, scopes, actor, now, plan_create_time=now, new_id=deps.new_id
    )
    if not any(
        p.role is ParticipantRole.COORDINATING_PRACTITIONER and p.organisation == org_id
        for p in content.participants
    ):
        content.participants.insert(
            0,
            Participant(
                id=deps.new_id(),
                role=ParticipantRole.COORDINATING_PRACTITIONER,
                organisation=org_id,
            ),
        )
    view = PlanView(
        patient_id=patient_id,
        care_group_id=_tenant(principal),
        record_holder_id=org_id,
        version=1,
        content=content,
        create_time=now,
        update_time=now,
    )
    document = view_to_document(view)
    try:
        with deps.uow() as uow:
            _add_new_plan(uow, view, document, principal.responsible_user)
            if request_id:
                uow.repo.add(
                    RequestRecord(
                        caller=principal.subject,
                        request_id=request_id,
                        method="CreateCarePlan",
                        resource_name=f"patients/{patient_id}/carePlan",
                        create_time=now,
                    )
                )
            uow.commit()
    except IntegrityError as exc:
        raise errors.CarePlanExists("the patient already has a care plan") from exc
    return view


def _status_value(content: PlanContent) -> str:
    return content.status.value if content.status else ""


def _revision_row(
    view: PlanView,
    document: dict[str, Any],
    author: str,
    organisation_id: str,
    summary: str,
    changed: list[str],
) -> CarePlanRevisionRow:
    return CarePlanRevisionRow(
        patient_id=view.patient_id,
        version=view.version,
        document=document,
        author=author[:200],
        organisation_id=organisation_id,
        change_summary=summary,
        changed_fields=",".join(changed)[:300],
        create_time=view.update_time,
    )


# ---------------------------------------------------------------- update


def update_care_plan(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    data: PlanContent,
    mask: Sequence[str],
    etag: str,
) -> PlanView:
    groups = groups_of_mask(list(mask))
    if not etag:
        raise InvalidArgument.single("care_plan.etag", "is required on update", "ETAG_REQUIRED")
    expected = version_of_etag(etag)
    if expected is None:
        raise InvalidArgument.single("care_plan.etag", "not an etag of this plan", "INVALID_ETAG")
    view = _load(deps, patient_id)
    role = _authorize(deps, principal, patient_id, view, Access.UPDATE)
    if view is None:
        raise errors.CarePlanNotFound("care plan not found")
    scopes = require_writable(role, groups)
    if expected != view.version:
        raise errors.EtagMismatch("the care plan has changed; read it again")
    now = deps.clock()
    actor = Actor(
        role=role,
        user=principal.subject,
        organisation_id=_org_id(principal)
        if role in (Role.PROFESSIONAL, Role.COORDINATING_PRACTITIONER)
        else "",
        patient_id=patient_id,
        default_goal_owner="",
    )
    content, summary, changed = merge(
        view.content,
        data,
        scopes,
        actor,
        now,
        plan_create_time=view.create_time,
        new_id=deps.new_id,
    )
    new_view = dataclasses.replace(view, version=expected + 1, content=content, update_time=now)
    document = view_to_document(new_view)
    with deps.uow() as uow:
        if not uow.repo.compare_and_set(
            patient_id,
            expected,
            {
                "version": expected + 1,
                "status": _status_value(content),
                "document": document,
                "update_time": now,
            },
        ):
            raise errors.EtagMismatch("the care plan has changed; read it again")
        uow.repo.add(
            _revision_row(
                new_view,
                document,
                principal.responsible_user,
                actor.organisation_id,
                summary or "no change",
                changed,
            )
        )
        uow.commit()
    return new_view


# ---------------------------------------------------------------- the merge


def merge(
    current: PlanContent,
    incoming: PlanContent,
    scopes: dict[FieldGroup, Scope],
    actor: Actor,
    now: dt.datetime,
    *,
    plan_create_time: dt.datetime,
    new_id: Callable[[], str],
) -> tuple[PlanContent, str, list[str]]:
    """``current`` with the groups in ``scopes`` taken from ``incoming``, checked item by
    item against the caller's scope. Returns the new content, a change summary and the
    groups that changed."""
    m = _Merge(
        copy.deepcopy(current), copy.deepcopy(incoming), actor, now, plan_create_time, new_id
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
        _unique_ids(self.incoming.conditions, "care_plan.conditions", self.v)
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
        _unique_ids(self.incoming.participants, "care_plan.participants", self.v)
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
        _unique_ids(self.incoming.informal_carers, "care_plan.informal_carers", self.v)
        self.new.informal_carers = self.incoming.informal_carers
        return _diff(self.current.informal_carers, self.new.informal_carers)

    def goals(self, scope: Scope) -> str | None:
        _merge_goals(
            self.current, self.incoming, self.new, scope, self.actor, self.now, self.v, self.new_id
        )
        before = [g.without_progress() for g in self.current.goals]
        if [g.without_progress() for g in self.new.goals] == before:
            return None
        return _counts(self.current.goals, self.new.goals)

    def progress(self, scope: Scope) -> str | None:
        added = _merge_progress(
            self.current, self.incoming, self.new, scope, self.actor, self.now, self.v, self.new_id
        )
        return f"{added} added" if added else None

    def actions(self, scope: Scope) -> str | None:
        _merge_actions(
            self.current,
            self.incoming,
            self.new,
            scope,
            self.actor,
            self.plan_create_time,
            self.now,
            self.v,
            self.new_id,
        )
        return _diff(self.current.actions, self.new.actions)

    def evaluations(self, scope: Scope) -> str | None:
        for i, e in enumerate(self.incoming.evaluations):
            if e.review_time is None:
                self.v.add(
                    f"care_plan.evaluations[{i}].review_time", "is required", "REVIEW_TIME_REQUIRED"
                )
            _text(e.outcome, f"care_plan.evaluations[{i}].outcome", self.v)
            e.id = e.id or self.new_id()
            e.organisation = e.organisation or self.actor.organisation_id
        _unique_ids(self.incoming.evaluations, "care_plan.evaluations", self.v)
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


def _diff(before: Sequence[Any], after: Sequence[Any]) -> str | None:
    return None if list(before) == list(after) else _counts(before, after)


def _merge_goals(
    current: PlanContent,
    incoming: PlanContent,
    new: PlanContent,
    scope: Scope,
    actor: Actor,
    now: dt.datetime,
    v: Violations,
    new_id: Callable[[], str],
) -> None:
    old_by_id = {g.id: g for g in current.goals}
    result = []
    for i, given in enumerate(incoming.goals):
        prefix = f"care_plan.goals[{i}]"
        _text(given.description, f"{prefix}.description", v, required=True)
        _text(given.notes, f"{prefix}.notes", v)
        old = old_by_id.get(given.id) if given.id else None
        given.id = given.id or new_id()  # _merge_progress finds the goal by this id
        goal = dataclasses.replace(given)
        if old is None:
            goal.owner = goal.owner or actor.default_goal_owner or actor.self_owner
            goal.create_time = now
            goal.progress = []
            if scope is Scope.OWN and not actor.owns(goal.owner):
                raise PermissionDenied(
                    "a new goal must be owned by its author", reason="GOAL_NOT_OWNED"
                )
        else:
            goal.owner = goal.owner or old.owner
            goal.create_time = old.create_time
            goal.progress = list(old.progress)
            if (
                not old.same_content(goal)
                and scope is Scope.OWN
                and not (actor.owns(old.owner) and actor.owns(goal.owner))
            ):
                raise PermissionDenied(
                    "this goal is owned by someone else", reason="GOAL_NOT_OWNED"
                )
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
        if old.id not in kept and scope is Scope.OWN and not actor.owns(old.owner):
            raise PermissionDenied("this goal is owned by someone else", reason="GOAL_NOT_OWNED")
    _unique_ids(result, "care_plan.goals", v)
    new.goals = result


def _merge_progress(
    current: PlanContent,
    incoming: PlanContent,
    new: PlanContent,
    scope: Scope,
    actor: Actor,
    now: dt.datetime,
    v: Violations,
    new_id: Callable[[], str],
) -> int:
    """Appends the new progress entries of each goal named; existing entries are immutable."""
    added = 0
    for i, goal in enumerate(incoming.goals):
        target = new.goal(goal.id) if goal.id else None
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
            fresh.append(
                dataclasses.replace(entry, id=new_id(), author=actor.user, record_time=now)
            )
        if fresh and scope is Scope.OWN and not actor.owns(target.owner):
            raise PermissionDenied("this goal is owned by someone else", reason="GOAL_NOT_OWNED")
        target.progress = [*target.progress, *fresh]
        added += len(fresh)
    return added


def _merge_actions(
    current: PlanContent,
    incoming: PlanContent,
    new: PlanContent,
    scope: Scope,
    actor: Actor,
    plan_create_time: dt.datetime,
    now: dt.datetime,
    v: Violations,
    new_id: Callable[[], str],
) -> None:
    old_by_id = {a.id: a for a in current.actions}
    result = []
    for i, action in enumerate(incoming.actions):
        prefix = f"care_plan.actions[{i}]"
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
            action.id = action.id or new_id()
            action.status = action.status or ActivityStatus.NOT_STARTED
            action.referral_state = None
            if scope is Scope.OWN and not actor.owns_organisation(action.responsible_organisation):
                raise PermissionDenied(
                    "an organisation adds only its own actions",
                    reason="ACTION_NOT_OWN_ORGANISATION",
                )
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
                raise PermissionDenied(
                    "this action belongs to another organisation",
                    reason="ACTION_NOT_OWN_ORGANISATION",
                )
        result.append(action)
    kept = {a.id for a in result}
    for old in current.actions:
        if (
            old.id not in kept
            and scope is Scope.OWN
            and not actor.owns_organisation(old.responsible_organisation)
        ):
            raise PermissionDenied(
                "this action belongs to another organisation", reason="ACTION_NOT_OWN_ORGANISATION"
            )
    _unique_ids(result, "care_plan.actions", v)
    new.actions = result


def _text(value: str, field_name: str, v: Violations, *, required: bool = False) -> None:
    if required and not value.strip():
        v.add(field_name, "is required", "TEXT_REQUIRED")
    elif len(value) > MAX_TEXT:
        v.add(field_name, f"at most {MAX_TEXT} characters", "TEXT_TOO_LONG")


def _check_texts(values: list[str], field_name: str, v: Violations, *, required: bool) -> None:
    if len(values) > MAX_ITEMS:
        v.add(field_name, f"at most {MAX_ITEMS} items", "TOO_MANY_ITEMS")
    for i, value in enumerate(values):
        _text(value, f"{field_name}[{i}]", v, required=required)


def _unique_ids(items: Sequence[Any], field_name: str, v: Violations) -> None:
    if len(items) > MAX_ITEMS:
        v.add(field_name, f"at most {MAX_ITEMS} items", "TOO_MANY_ITEMS")
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not names.valid_id(item.id):
            v.add(
                f"{field_name}[{i}].id", "2-63 lower-case letters, digits and dashes", "INVALID_ID"
            )
        if item.id in seen:
            v.add(f"{field_name}[{i}].id", "is used twice", "DUPLICATE_ID")
        seen.add(item.id)


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


# ---------------------------------------------------------------- referral events


def consumer_cursor(deps: Deps, consumer: str = REFERRAL_CONSUMER) -> int:
    with deps.uow() as uow:
        return uow.repo.cursor(consumer)


def apply_referral_event(
    deps: Deps, event: ReferralEvent, consumer: str = REFERRAL_CONSUMER
) -> bool:
    """Makes the actions linked to the event's referral follow it, and advances the cursor,
    in one transaction. An event at or below the cursor, or already applied (by event id),
    changes nothing. Returns whether a plan changed."""
    now = deps.clock()
    with deps.uow() as uow:
        cursor = uow.repo.lock_cursor(consumer)
        if event.cursor <= cursor.position or uow.repo.applied_event(event.event_id) is not None:
            if event.cursor > cursor.position:
                cursor.position = event.cursor
                cursor.update_time = now
                uow.commit()
            return False
        applied = False
        row = uow.repo.plan_for_update(event.patient_id) if event.patient_id else None
        if row is not None:
            view = row.view()
            state = ReferralState(
                status=event.status,
                business_status=event.business_status,
                enrolment=event.enrolment,
                feedback_summary=event.feedback_summary[:MAX_TEXT],
                update_time=event.event_time or now,
            )
            linked = view.content.actions_linked_to(event.referral)
            changes = [action.follow_referral(state) for action in linked]
            if any(changes):
                new_view = dataclasses.replace(view, version=view.version + 1, update_time=now)
                document = view_to_document(new_view)
                row.version = new_view.version
                row.document = document
                row.status = _status_value(new_view.content)
                row.update_time = now
                uow.repo.add(
                    _revision_row(
                        new_view,
                        document,
                        CONSUMER_AUTHOR,
                        "",
                        f"actions: {sum(changes)} follow referral {event.status or 'change'}",
                        ["actions"],
                    )
                )
                uow.repo.add(
                    AppliedEvent(
                        event_id=event.event_id[:100],
                        position=event.cursor,
                        patient_id=event.patient_id,
                        plan_version=new_view.version,
                        apply_time=now,
                    )
                )
                applied = True
        cursor.position = event.cursor
        cursor.update_time = now
        uow.commit()
        return applied


# ---------------------------------------------------------------- operator seeding


def seed_care_plan(
    deps: Deps,
    patient_id: str,
    care_group_id: str,
    record_holder_id: str,
    content: PlanContent,
    author: str,
) -> PlanView:
    """Writes a plan directly (operator CLI ``careplan seed-demo``; no end user, so no
    Authorize). Does nothing if the patient has a plan."""
    existing = _load(deps, patient_id)
    if existing is not None:
        return existing
    now = deps.clock()
    actor = Actor(
        role=Role.COORDINATING_PRACTITIONER,
        user=author,
        organisation_id=record_holder_id,
        patient_id=patient_id,
        default_goal_owner=f"patients/{patient_id}",
    )
    scopes = dict.fromkeys(FieldGroup, Scope.ALL)
    content = dataclasses.replace(content, status=content.status or PlanStatus.ACTIVE)
    merged, _, _ = merge(
        PlanContent(), content, scopes, actor, now, plan_create_time=now, new_id=deps.new_id
    )
    view = PlanView(patient_id, care_group_id, record_holder_id, 1, merged, now, now)
    document = view_to_document(view)
    with deps.uow() as uow:
        _add_new_plan(uow, view, document, author)
        uow.commit()
    return view


def _add_new_plan(uow: UnitOfWork, view: PlanView, document: dict[str, Any], author: str) -> None:
    """A new plan at version 1 and its first revision."""
    uow.repo.add(
        CarePlanRow(
            patient_id=view.patient_id,
            care_group_id=view.care_group_id,
            record_holder_id=view.record_holder_id,
            status=_status_value(view.content),
            version=1,
            document=document,
            create_time=view.create_time,
            update_time=view.update_time,
        )
    )
    uow.repo.add(
        _revision_row(view, document, author, view.record_holder_id, "created", ["created"])
    )

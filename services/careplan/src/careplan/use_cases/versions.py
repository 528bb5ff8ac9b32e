"""What the careplan use cases share: reading a plan and asking identity about the access,
checking an etag, replaying a request by its ``request_id`` (servicekit.idempotency), and
writing a new version of a plan (a compare-and-set on the version plus its immutable
revision)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from careplan import access, coordination, errors, minimisation
from careplan.deps import Deps
from careplan.merge import Actor, Where, merge
from careplan.models import (
    CarePlanRevisionRow,
    CarePlanRow,
    PlanContent,
    PlanView,
    view_from_document,
    view_to_document,
)
from careplan.policy import CARE_ROLES, FieldGroup, Role, Scope
from careplan.unit_of_work import UnitOfWork
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument
from servicekit.idempotency import IdempotentRequest
from servicekit.identity_client import Access
from servicekit.versioned import version_of_etag

# Versions are stored as 32-bit integers: none can be higher.
MAX_VERSION = 2**31 - 1


def org_id(principal: Principal) -> str:
    return principal.organisation.removeprefix("organisations/")


def tenant(principal: Principal) -> str:
    return principal.care_group.removeprefix("organisations/")


def plan_name(patient_id: str) -> str:
    return f"patients/{patient_id}/carePlan"


def load(deps: Deps, patient_id: str) -> PlanView | None:
    """The plan's current version (one statement; see the repository). The view returned is
    shared: do not change it."""
    with deps.uow() as uow:
        return uow.repo.current_plan(patient_id)


def read_and_authorize(
    deps: Deps, principal: Principal, patient_id: str, kind: Access
) -> tuple[PlanView, Role]:
    """The plan as read, after identity permitted this access to it (one question, one
    access-log entry, asked about that plan); NOT_FOUND for a missing plan only after the
    permit, so a patient who exists but may not be seen and one who does not exist answer
    alike. Another care group's plan does not exist for the caller.

    A missing plan is decided as the plan would be if it existed: held by the practice that
    would create and hold it, the patient's coordinating practice (:func:`would_be_holder`).
    So a professional without the consent a plan needs is refused alike whether or not the
    patient has a plan, and the log never records a permit to hold a plan the caller's
    organisation would not hold."""
    view = load(deps, patient_id)
    if view is not None and view.care_group_id != tenant(principal):
        view = None
    holder = "" if view is not None else would_be_holder(deps, principal, patient_id)
    role = access.authorize(deps.identity, principal, patient_id, view, kind, holder)
    if view is None:
        raise errors.CarePlanNotFound("care plan not found")
    return view, role


def would_be_holder(deps: Deps, principal: Principal, patient_id: str) -> str:
    """The record holder of the patient's plan if it existed: the coordinating practice
    (the only one that may create, and so hold, a plan), the caller's own organisation when
    it coordinates. Learnt as the caller from identity's ``ListCareRelationships``
    (:mod:`careplan.coordination`; identity logs that read), and only for a professional,
    the one subject whose answer depends on who holds the plan.

    Where the caller sees no practice coordinate (nobody does, or identity shows the
    caller's role only its own organisation's relationships), no practice the caller knows
    would hold the plan and the caller's own organisation would not: the care group is
    named, an organisation that holds no plan, so identity decides the read as one of
    another organisation's record (a care relationship and a consent covering that holder,
    else NO_CONSENT), never as a read of the caller's own. Empty (the caller's own, as
    identity reads it) when identity refuses the caller the relationships (a caller without
    a care relationship, whom identity refuses the plan whatever its holder)."""
    if principal.is_patient or not (principal.roles & CARE_ROLES and principal.organisation):
        return ""
    if deps.coordinators is None:
        return ""
    try:
        coordinators = deps.coordinators.coordinating_practices(
            coordination.credentials_of(principal), patient_id
        )
    except coordination.NotVisible:
        return ""
    own = org_id(principal)
    if own in coordinators:
        return own
    return min(coordinators, default=tenant(principal))


def viewer_of(principal: Principal, role: Role) -> minimisation.Viewer | None:
    return minimisation.viewer_of(principal, role)


def hidden_from(principal: Principal, role: Role, view: PlanView) -> minimisation.Hidden:
    """The items of ``view`` the caller does not see (none for a whole-plan viewer)."""
    viewer = viewer_of(principal, role)
    return minimisation.Hidden() if viewer is None else minimisation.hidden_of(view.content, viewer)


def part_of(principal: Principal, role: Role, view: PlanView) -> PlanView:
    """The caller's part of ``view`` (:mod:`careplan.minimisation`): ``view`` itself for a
    whole-plan viewer, a trimmed copy with the plan's version (and so its etag) otherwise."""
    viewer = viewer_of(principal, role)
    if viewer is None:
        return view
    return dataclasses.replace(view, content=minimisation.minimise(view.content, viewer))


def check_version(version: int) -> None:
    if not 0 <= version <= MAX_VERSION:
        raise InvalidArgument.single(
            "version", f"must be between 0 and {MAX_VERSION}", "INVALID_VERSION"
        )


def read_version(deps: Deps, principal: Principal, patient_id: str, version: int = 0) -> PlanView:
    """The plan (or one past version of it, exactly as written) after identity permitted
    the read: the caller's part of it (:mod:`careplan.minimisation`)."""
    check_version(version)
    view, role = read_and_authorize(deps, principal, patient_id, Access.READ)
    if version in (0, view.version):
        return part_of(principal, role, view)
    with deps.uow() as uow:
        revision = uow.repo.revision(patient_id, version)
        if revision is None:
            raise errors.RevisionNotFound("no such version of the care plan")
        return part_of(principal, role, view_from_document(revision.document))


def expected_version(etag: str, field: str) -> int:
    """The version an update's etag names; INVALID_ARGUMENT naming ``field`` when missing
    or not an etag of a plan."""
    if not etag:
        raise InvalidArgument.single(field, "is required on update", "ETAG_REQUIRED")
    expected = version_of_etag(etag)
    if expected is None:
        raise InvalidArgument.single(field, "not an etag of this plan", "INVALID_ETAG")
    return expected


def replay(deps: Deps, principal: Principal, request: IdempotentRequest | None) -> PlanView | None:
    """The plan as the first request with this id wrote it, if this is the same request
    again; None for a new id (or none given). Returning it is a read of the plan, asked
    about as one. The record names the plan (a create: its version 1) or the revision the
    first request wrote (``.../carePlan/revisions/{version}``)."""
    if request is None or not request.request_id:
        return None
    with deps.uow() as uow:
        name = request.replayed(uow.repo)
    if name is None:
        return None
    plan, _, version = name.partition("/revisions/")
    patient_id = plan.removeprefix("patients/").removesuffix("/carePlan")
    return read_version(deps, principal, patient_id, int(version) if version else 1)


def status_value(content: PlanContent) -> str:
    return content.status.value if content.status else ""


def revision_row(
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


def add_new_plan(uow: UnitOfWork, view: PlanView, document: dict[str, Any], author: str) -> None:
    """A new plan at version 1 and its first revision."""
    uow.repo.add(
        CarePlanRow(
            patient_id=view.patient_id,
            care_group_id=view.care_group_id,
            record_holder_id=view.record_holder_id,
            status=status_value(view.content),
            version=1,
            document=document,
            create_time=view.create_time,
            update_time=view.update_time,
        )
    )
    uow.repo.add(
        revision_row(view, document, author, view.record_holder_id, "created", ["created"])
    )


def write_version(
    uow: UnitOfWork,
    view: PlanView,
    content: PlanContent,
    now: dt.datetime,
    *,
    author: str,
    organisation_id: str,
    summary: str,
    changed: list[str],
) -> PlanView:
    """Writes ``content`` as the version after ``view`` (uncommitted), if the plan is still
    at ``view``'s version; ABORTED ``ETAG_MISMATCH`` if another write came first."""
    new_view = dataclasses.replace(view, version=view.version + 1, content=content, update_time=now)
    document = view_to_document(new_view)
    values = {
        "version": new_view.version,
        "status": status_value(content),
        "document": document,
        "update_time": now,
    }
    if not uow.repo.compare_and_set(view.patient_id, view.version, values):
        raise errors.EtagMismatch("the care plan has changed; read it again")
    uow.repo.add(revision_row(new_view, document, author, organisation_id, summary, changed))
    return new_view


def write_update(
    deps: Deps,
    principal: Principal,
    view: PlanView,
    role: Role,
    incoming: PlanContent,
    scopes: dict[FieldGroup, Scope],
    *,
    where: Where | None = None,
    request: IdempotentRequest | None = None,
) -> PlanView:
    """An update identity permitted: the groups in ``scopes`` merged from ``incoming`` as the
    caller's role may (:func:`careplan.merge.merge`, ``where`` naming the request's fields),
    written as the version after ``view`` with its revision, and the ``request``'s record
    naming that revision, in one transaction. Items the caller does not see stay as they
    are (the merge's ``hidden``); the answer is the caller's part of the plan as written."""
    now = deps.clock()
    actor = actor_of(principal, role, view.patient_id)
    hidden = hidden_from(principal, role, view)
    content, summary, changed = merge(
        view.content,
        incoming,
        scopes,
        actor,
        now,
        plan_create_time=view.create_time,
        new_id=deps.new_id,
        where=where,
        hidden=hidden,
    )
    with deps.uow() as uow:
        written = write_version(
            uow,
            view,
            content,
            now,
            author=principal.responsible_user,
            organisation_id=actor.organisation_id,
            summary=summary or "no change",
            changed=changed,
        )
        if request is not None:
            request.remember(uow.repo, f"{plan_name(view.patient_id)}/revisions/{written.version}")
        uow.commit()
    return part_of(principal, role, written)


def actor_of(principal: Principal, role: Role, patient_id: str) -> Actor:
    """The writer of an update as the merge sees them: a professional's organisation, none
    for the patient or an informal carer."""
    professional = role in (Role.PROFESSIONAL, Role.COORDINATING_PRACTITIONER)
    return Actor(
        role=role,
        user=principal.subject,
        organisation_id=org_id(principal) if professional else "",
        patient_id=patient_id,
        default_goal_owner="",
    )

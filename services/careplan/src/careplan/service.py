"""The careplan use cases, as plain functions over a unit of work.

Every read and write of a plan asks identity's ``Authorize`` once (see
:mod:`careplan.access`), which logs the access: the plan is read first (one statement), the
question is the one that plan implies, and nothing is returned before identity's answer.
Within a permitted update, :mod:`careplan.policy` decides per field group. Every accepted
update writes a new immutable revision holding the whole plan; the etag is the version, and
the write is a compare-and-set on it, so concurrent writers never lose an update: each one
is either in the history or got ABORTED.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from careplan import access, errors
from careplan.clients import Access, AccessQuestion, IdentityClient, ReferralEvent
from careplan.coordination import Coordinators, Credentials, NotVisible
from careplan.merge import MAX_TEXT, Actor, merge
from careplan.models import (
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
from careplan.policy import CREATE_ROLES, FieldGroup, Role, Scope, groups_of_mask, require_writable
from careplan.unit_of_work import UnitOfWork
from servicekit import idempotency
from servicekit.auth import Principal
from servicekit.delegation import Delegations
from servicekit.errors import InvalidArgument

__all__ = ["Actor", "merge"]

REFERRAL_CONSUMER = "referral-events"
CONSUMER_AUTHOR = "careplan:referral-events"
CREATE_METHOD = "CreateCarePlan"
# Versions are stored as 32-bit integers: none can be higher.
MAX_VERSION = 2**31 - 1


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
    # Who a delegate acts for (the server resolves it before every call); None: a delegated
    # call keeps the client's own roles, so careplan's write rules refuse it.
    delegations: Delegations | None = None
    # Who coordinates a patient's care (identity, asked as the caller); None: nobody may
    # create a plan (fail closed).
    coordinators: Coordinators | None = None
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


def _org_id(principal: Principal) -> str:
    return principal.organisation.removeprefix("organisations/")


def _tenant(principal: Principal) -> str:
    return principal.care_group.removeprefix("organisations/")


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


def _read_and_authorize(
    deps: Deps, principal: Principal, patient_id: str, kind: Access
) -> tuple[PlanView, Role]:
    """The plan as read, after identity permitted this access to it (one question, one
    access-log entry, asked about that plan); NOT_FOUND for a missing plan only after the
    permit, so a patient who exists but may not be seen and one who does not exist answer
    alike. Another care group's plan does not exist for the caller: the question names no
    plan, exactly as for a patient without one."""
    view = _load(deps, patient_id)
    if view is not None and view.care_group_id != _tenant(principal):
        view = None
    role = access.authorize(deps.identity, principal, patient_id, view, kind)
    if view is None:
        raise errors.CarePlanNotFound("care plan not found")
    return view, role


# ---------------------------------------------------------------- reads


def check_version(version: int) -> None:
    if not 0 <= version <= MAX_VERSION:
        raise InvalidArgument.single(
            "version", f"must be between 0 and {MAX_VERSION}", "INVALID_VERSION"
        )


def get_care_plan(deps: Deps, principal: Principal, patient_id: str, version: int = 0) -> PlanView:
    check_version(version)
    view, _ = _read_and_authorize(deps, principal, patient_id, Access.READ)
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
    _read_and_authorize(deps, principal, patient_id, Access.READ)
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
    deps: Deps,
    principal: Principal,
    patient_id: str,
    data: PlanContent,
    request_id: str = "",
    fingerprint: str = "",
    credentials: Credentials = (),
) -> PlanView:
    """Creates the patient's one plan. Only a GP or practice nurse of the patient's
    coordinating practice (the organisation with the patient's active COORDINATING care
    relationship in identity, learnt as the caller through ``credentials``:
    :mod:`careplan.coordination`) may create it, and that practice becomes the record holder
    and the coordinating practitioner; anyone else is PERMISSION_DENIED
    ``NOT_COORDINATING_PRACTICE`` before anything is created or identity is asked about the
    plan. The plan is recorded as agreed in the consult (every field group
    except the informal carers, which only the patient mandates).

    A plan that exists already is reported (ALREADY_EXISTS, naming it) only to a caller
    identity permits to read it; anyone else gets the refusal a GetCarePlan of it gives
    (e.g. NO_CONSENT), so a create tells nothing a read would not.

    ``fingerprint`` identifies the request (without its ``request_id``): a repeat with the
    same id and fingerprint returns the plan as the first request wrote it, and is a read
    of it (so identity is asked about a read); the same id with another request is
    INVALID_ARGUMENT ``REQUEST_ID_REUSED``. Everything that depends only on the caller and
    the request is checked before identity is asked, so a permitted create is written
    unless the patient has a plan already.
    """
    idempotency.check(request_id)
    # The same body sent by a delegate for another person is another request.
    fingerprint = idempotency.for_person(fingerprint, principal.on_behalf_of)
    if request_id:
        replay = _replay(deps, principal, request_id, fingerprint)
        if replay is not None:
            return replay
    if not principal.roles & CREATE_ROLES or not _org_id(principal):
        raise errors.RoleNotPermitted("only a GP or practice nurse may create a care plan")
    if data.informal_carers:
        raise errors.FieldGroupNotWritable(
            "only the patient mandates informal carers",
            metadata={
                "field_group": FieldGroup.INFORMAL_CARERS.value,
                "role": Role.COORDINATING_PRACTITIONER.value,
            },
        )
    org_id = _coordinating_practice(deps, principal, patient_id, credentials)
    view = _new_plan(deps, principal, patient_id, org_id, data)
    existing = _load(deps, patient_id)
    if existing is not None and existing.care_group_id == _tenant(principal):
        # Only a caller who may read the plan learns that it exists.
        access.authorize(deps.identity, principal, patient_id, existing, Access.READ)
        raise errors.CarePlanExists(
            "the patient already has a care plan",
            metadata={"care_plan": f"patients/{patient_id}/carePlan"},
        )
    question = AccessQuestion(principal, patient_id, Access.CREATE, org_id, access.PURPOSE)
    access.ask(deps.identity, principal, access.Question(question, Role.COORDINATING_PRACTITIONER))
    document = view_to_document(view)
    try:
        with deps.uow() as uow:
            _add_new_plan(uow, view, document, principal.responsible_user)
            if request_id:
                uow.repo.add(
                    RequestRecord(
                        caller=principal.subject,
                        request_id=request_id,
                        method=CREATE_METHOD,
                        fingerprint=fingerprint,
                        resource_name=f"patients/{patient_id}/carePlan",
                        create_time=view.create_time,
                    )
                )
            uow.commit()
    except IntegrityError as exc:
        # A concurrent create won: the same request again (its plan, read), the same id for
        # another request (REQUEST_ID_REUSED), or another create of this patient's plan.
        replay = _replay(deps, principal, request_id, fingerprint) if request_id else None
        if replay is None:
            raise errors.CarePlanExists("the patient already has a care plan") from exc
        return replay
    return view


def _coordinating_practice(
    deps: Deps, principal: Principal, patient_id: str, credentials: Credentials
) -> str:
    """The caller's organisation, when it is the patient's coordinating practice (which will
    hold the plan); NOT_COORDINATING_PRACTICE otherwise, also when identity lets the caller
    see nothing of the patient, so that a patient who does not exist answers alike."""
    refused = errors.NotCoordinatingPractice(
        "only the patient's coordinating practice may create the care plan"
    )
    if deps.coordinators is None:
        raise refused
    try:
        coordinators = deps.coordinators.coordinating_practices(credentials, patient_id)
    except NotVisible as exc:
        raise refused from exc
    own = _org_id(principal)
    if own not in coordinators:
        raise refused
    return own


def _replay(deps: Deps, principal: Principal, request_id: str, fingerprint: str) -> PlanView | None:
    """The plan as the first request with this id wrote it, if this is the same request
    again; None for a new id. Returning it is a read of the plan, asked about as one."""
    with deps.uow() as uow:
        record = uow.repo.request_record(principal.subject, request_id)
    name = idempotency.replayed(record, CREATE_METHOD, fingerprint)
    if name is None:
        return None
    patient_id = name.removeprefix("patients/").removesuffix("/carePlan")
    return get_care_plan(deps, principal, patient_id, version=1)


def _new_plan(
    deps: Deps, principal: Principal, patient_id: str, org_id: str, data: PlanContent
) -> PlanView:
    """The plan a create writes, validated (version 1, held by the caller's organisation)."""
    now = deps.clock()
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
    return PlanView(
        patient_id=patient_id,
        care_group_id=_tenant(principal),
        record_holder_id=org_id,
        version=1,
        content=content,
        create_time=now,
        update_time=now,
    )


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
    view, role = _read_and_authorize(deps, principal, patient_id, Access.UPDATE)
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

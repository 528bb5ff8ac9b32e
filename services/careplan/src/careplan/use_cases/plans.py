"""The plan as a whole: create it, read it, update the field groups an update mask names,
and seed it from the operator CLI."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from careplan import access, errors
from careplan.coordination import Credentials, NotVisible
from careplan.deps import Deps
from careplan.merge import Actor, merge
from careplan.models import (
    Participant,
    ParticipantRole,
    PlanContent,
    PlanStatus,
    PlanView,
    view_to_document,
)
from careplan.policy import CREATE_ROLES, FieldGroup, Role, Scope, groups_of_mask, require_writable
from careplan.use_cases import versions
from servicekit.auth import Principal
from servicekit.idempotency import IdempotentRequest
from servicekit.identity_client import Access, AccessQuestion

CREATE_METHOD = "CreateCarePlan"


def get_care_plan(deps: Deps, principal: Principal, patient_id: str, version: int = 0) -> PlanView:
    """The plan, or one past version of it exactly as it was written."""
    return versions.read_version(deps, principal, patient_id, version)


def create_care_plan(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    data: PlanContent,
    request: IdempotentRequest | None = None,
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
    (e.g. NO_CONSENT), so a create tells nothing a read would not. That read is the one
    access such a call makes, and the one entry it logs, when the caller's organisation
    holds the plan; for any other caller the coordinating practice is checked first, as
    for a patient without a plan (a caller whose practice does not coordinate gets
    NOT_COORDINATING_PRACTICE either way).

    ``request`` (servicekit.idempotency) identifies the request: a repeat
    with the same id and fingerprint returns the plan as the first request wrote it, and is
    a read of it (so identity is asked about a read); the same id with another request is
    INVALID_ARGUMENT ``REQUEST_ID_REUSED``. Everything that depends only on the caller and
    the request is checked before identity is asked, so a permitted create is written
    unless the patient has a plan already.
    """
    replay = versions.replay(deps, principal, request)
    if replay is not None:
        return replay
    if not principal.roles & CREATE_ROLES or not versions.org_id(principal):
        raise errors.RoleNotPermitted("only a GP or practice nurse may create a care plan")
    if data.informal_carers:
        raise errors.FieldGroupNotWritable(
            "only the patient mandates informal carers",
            metadata={
                "field_group": FieldGroup.INFORMAL_CARERS.value,
                "role": Role.COORDINATING_PRACTITIONER.value,
            },
        )
    own = versions.org_id(principal)
    view = _new_plan(deps, principal, patient_id, own, data)
    existing = versions.load(deps, patient_id)
    if existing is not None and existing.care_group_id == versions.tenant(principal):
        # The same request, committed since the check above (a retry sent while the first
        # was still running), answers the plan it created.
        replay = versions.replay(deps, principal, request)
        if replay is not None:
            return replay
        if existing.record_holder_id != own:
            # Answered as for a patient without a plan when the caller's practice does not
            # coordinate (the same refusal, the same relationships read).
            _coordinating_practice(deps, principal, patient_id, credentials)
            access.authorize(deps.identity, principal, patient_id, existing, Access.READ)
        else:
            # Only a caller who may read the plan learns that it exists: the one access is
            # that read (nothing is created), asked about and logged once. The holding
            # practice refused it (its relationship ended) is answered as for a patient
            # without a plan, whom it no longer sees either.
            try:
                access.authorize(deps.identity, principal, patient_id, existing, Access.READ)
            except errors.AccessDenied as exc:
                raise errors.NotCoordinatingPractice(
                    "only the patient's coordinating practice may create the care plan"
                ) from exc
        raise errors.CarePlanExists(
            "the patient already has a care plan",
            metadata={"care_plan": versions.plan_name(patient_id)},
        )
    org_id = _coordinating_practice(deps, principal, patient_id, credentials)
    question = AccessQuestion(principal, patient_id, Access.CREATE, org_id, access.PURPOSE)
    access.ask(deps.identity, access.Question(question, Role.COORDINATING_PRACTITIONER))
    document = view_to_document(view)
    try:
        with deps.uow() as uow:
            versions.add_new_plan(uow, view, document, principal.responsible_user)
            if request is not None:
                request.remember(uow.repo, versions.plan_name(patient_id))
            uow.commit()
    except IntegrityError as exc:
        # A concurrent create won: the same request again (its plan, read), the same id for
        # another request (REQUEST_ID_REUSED), or another create of this patient's plan.
        replay = versions.replay(deps, principal, request)
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
    own = versions.org_id(principal)
    if own not in coordinators:
        raise refused
    return own


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
        care_group_id=versions.tenant(principal),
        record_holder_id=org_id,
        version=1,
        content=content,
        create_time=now,
        update_time=now,
    )


def update_care_plan(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    data: PlanContent,
    mask: Sequence[str],
    etag: str,
) -> PlanView:
    """Replaces the field groups ``mask`` names (list groups as whole lists), as the
    caller's role may (:mod:`careplan.policy`), at the version ``etag`` names."""
    groups = groups_of_mask(list(mask))
    expected = versions.expected_version(etag, "care_plan.etag")
    view, role = versions.read_and_authorize(deps, principal, patient_id, Access.UPDATE)
    scopes = require_writable(role, groups)
    if expected != view.version:
        raise errors.EtagMismatch("the care plan has changed; read it again")
    return versions.write_update(deps, principal, view, role, data, scopes)


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
    existing = versions.load(deps, patient_id)
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
    with deps.uow() as uow:
        versions.add_new_plan(uow, view, view_to_document(view), author)
        uow.commit()
    return view

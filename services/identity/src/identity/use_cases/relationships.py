"""Care relationships: recording, listing and ending them.

Who records one (a treatment relationship is the care provider's own claim, checked
afterwards through the access log):

- the care group's admin, for any organisation of the care group (``RECORDED_BY_ADMIN``);
- a clinical role (GP, practice nurse, specialist) of a care-providing organisation (a GP
  practice or a hospital, :data:`CARE_PROVIDING`), for its own organisation
  (``SELF_DECLARED``);
- the patient's coordinating GP practice (its clinical roles), for another care-providing
  organisation (``RECORDED_BY_COORDINATOR``).

Lifestyle providers and municipalities declare nothing: they reach a patient's data through
the referrals made to them (``BASIS_REFERRAL_TARGET``), or through a relationship the care
group's admin records. Every recording is written to the patient's access log as what
happened: event ``CREATE_CARE_RELATIONSHIP`` (or ``REGISTER_PATIENT`` for the registration
of a new patient), the recorder as user and organisation, the reason naming how
(``SELF_DECLARED``, ``RECORDED_BY_ADMIN``, ``RECORDED_BY_COORDINATOR``) and the purpose
naming the relationship (:func:`recorded`), so that the patient sees it on the Privacy page
and the auditor can list the self-declared ones. Who ends one: the admin, an organisation
its own, the coordinating practice any. Who sees them: see :mod:`identity.minimisation`.

At most one relationship of a kind between a patient and an organisation is active: a second
create is ALREADY_EXISTS ``CARE_RELATIONSHIP_EXISTS`` naming the first (ErrorInfo metadata
``care_relationship``). A create first raises the patient's facts version, whose row lock
makes concurrent creates for the patient wait for each other, so the check sees what the
other committed; the partial unique index on open relationships (patient, organisation,
kind) holds it in the database as well, whatever path a row takes.

A patient identity does not know in the caller's care group, one the caller may not manage,
and (on ending) a relationship the patient does not have are refused alike (PERMISSION_DENIED
``NOT_RELATIONSHIP_MANAGER``, logged), also for the care group's admin.
"""

from __future__ import annotations

import datetime as dt
import uuid

from identity import errors, minimisation
from identity.models import (
    Action,
    CareRelationship,
    DataCategory,
    Organisation,
    OrganisationType,
    Patient,
    RelationshipKind,
)
from identity.policy import Answer, Basis, Decision
from identity.unit_of_work import UnitOfWork
from identity.use_cases.common import (
    ADMIN_ROLES,
    NO_REQUEST_ID,
    RECORDING_ROLES,
    care_group_of,
    org_id_of,
)
from identity.use_cases.decisions import admit, append_log, log_entry, refuse, visible_patient
from identity.use_cases.deps import Deps
from servicekit import names
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument, Violations
from servicekit.idempotency import IdempotentRequest
from servicekit.paging import Page, PageRequest

# Who may end their own organisation's relationship (ending only narrows access).
MANAGING_ROLES = RECORDING_ROLES | {"provider", "sport-coach", "municipality-officer"}
# Who may declare a relationship of their own care-providing organisation.
CLINICAL_ROLES = RECORDING_ROLES
# The organisations that provide care and so may claim a treatment relationship themselves.
CARE_PROVIDING = frozenset({OrganisationType.GP_PRACTICE.value, OrganisationType.HOSPITAL.value})
NOT_MANAGER = "NOT_RELATIONSHIP_MANAGER"
SELF_DECLARED = "SELF_DECLARED"
RECORDED_BY_ADMIN = "RECORDED_BY_ADMIN"
RECORDED_BY_COORDINATOR = "RECORDED_BY_COORDINATOR"


def recorded(organisation_id: str, kind: str) -> str:
    """The access log's purpose of an entry that records a relationship: what was recorded."""
    return f"care relationship recorded: organisations/{organisation_id} ({kind})"


def relationship_name(rel: CareRelationship) -> str:
    return f"patients/{rel.patient_id}/careRelationships/{rel.id}"


def coordinates(uow: UnitOfWork, principal: Principal, patient_id: str, now: dt.datetime) -> bool:
    """Whether the caller's organisation is the patient's active coordinating one."""
    own = org_id_of(principal)
    return bool(own) and any(
        r.kind == RelationshipKind.COORDINATING.value and r.active_at(now)
        for r in uow.repo.care_relationships(patient_id, own)
    )


def _may_manage(
    uow: UnitOfWork,
    principal: Principal,
    patient: Patient | None,
    organisation_id: str | None,
    now: dt.datetime,
) -> bool:
    """Care-group admins; an organisation for itself; the coordinating practice for any.
    ``organisation_id`` None: any organisation's (not the caller's own as such). Nobody, for
    a patient identity does not know in the caller's care group."""
    if patient is None:
        return False
    if _is_admin_of(principal, patient):
        return True
    if not principal.roles & MANAGING_ROLES:
        return False
    if organisation_id is not None and org_id_of(principal) == organisation_id:
        return True
    return coordinates(uow, principal, patient.id, now)


def _is_admin_of(principal: Principal, patient: Patient) -> bool:
    return bool(principal.roles & ADMIN_ROLES) and care_group_of(principal) == (
        patient.care_group_id
    )


def may_declare(principal: Principal, own_type: str | None) -> bool:
    """Whether the caller may declare its own organisation's relationship: a clinical role
    of a care-providing organisation (``own_type`` the caller's organisation's type)."""
    return bool(principal.roles & CLINICAL_ROLES) and own_type in CARE_PROVIDING


def _recording_reason(
    uow: UnitOfWork,
    principal: Principal,
    patient: Patient,
    organisation: Organisation,
    now: dt.datetime,
) -> str | None:
    """How the caller may record ``organisation``'s relationship with the patient (the
    access log's reason), or None when it may not (see the module's rules)."""
    if _is_admin_of(principal, patient):
        return RECORDED_BY_ADMIN
    own = uow.repo.organisation(org_id_of(principal)) if org_id_of(principal) else None
    if own is None or not may_declare(principal, own.type):
        return None
    if organisation.id == own.id:
        return SELF_DECLARED
    if organisation.type in CARE_PROVIDING and coordinates(uow, principal, patient.id, now):
        return RECORDED_BY_COORDINATOR
    return None


def _may_appoint_coordinator(principal: Principal, patient: Patient) -> bool:
    """Who names a patient's coordinating practice: the care group's admin only (the GP
    practice that registers a new patient becomes it at registration). A coordinator is
    changed by ending the current one first (the coordinator itself or the admin)."""
    return _is_admin_of(principal, patient)


def create_care_relationship(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    organisation_id: str,
    kind: RelationshipKind | None,
    start_time: dt.datetime | None,
    end_time: dt.datetime | None,
    request: IdempotentRequest = NO_REQUEST_ID,
) -> CareRelationship:
    v = Violations()
    if kind is None:
        v.add("care_relationship.kind", "is required", "KIND_REQUIRED")
    if start_time and end_time and end_time <= start_time:
        v.add("care_relationship.end_time", "must be after start_time", "END_BEFORE_START")
    v.raise_if_any()
    assert kind is not None
    now = deps.clock()
    with deps.uow() as uow:
        replay = request.replayed(uow.repo)
        if replay is not None:
            p_id, rel_id = names.parse(replay, "patients", "careRelationships")
            first = uow.repo.care_relationship(p_id, rel_id)
            if first is None:
                raise errors.CareRelationshipNotFound("care relationship not found")
            return first
        # The organisation is checked against the caller's care group: the answer must not
        # depend on whether (or where) the patient exists.
        org = uow.repo.organisation(organisation_id)
        if org is None or org.care_group_id != care_group_of(principal):
            raise InvalidArgument.single(
                "care_relationship.organisation", "unknown organisation", "UNKNOWN_ORGANISATION"
            )
        if org.type == OrganisationType.INSURER:
            raise InvalidArgument.single(
                "care_relationship.organisation",
                "insurers have no care relationships",
                "INSURER_NOT_ALLOWED",
            )
        coordinating = kind is RelationshipKind.COORDINATING
        if coordinating and org.type != OrganisationType.GP_PRACTICE:
            raise InvalidArgument.single(
                "care_relationship.kind",
                "only a GP practice coordinates a patient's care",
                "COORDINATOR_NOT_GP_PRACTICE",
            )
        patient = visible_patient(uow, principal, patient_id)
        reason = None
        if patient is not None:
            reason = (
                (RECORDED_BY_ADMIN if _may_appoint_coordinator(principal, patient) else None)
                if coordinating
                else _recording_reason(uow, principal, patient, org, now)
            )
        if patient is None or reason is None:
            refuse(
                uow,
                principal,
                patient_id[:128],
                patient.care_group_id if patient else care_group_of(principal),
                DataCategory.PATIENT_RECORD,
                Action.CREATE,
                "CREATE_CARE_RELATIONSHIP",
                now,
                NOT_MANAGER,
            )
        # Taken first: concurrent creates for this patient wait here for each other.
        uow.repo.facts_changed(patient.id)
        append_log(
            uow,
            log_entry(
                event="CREATE_CARE_RELATIONSHIP",
                principal=principal,
                patient_id=patient.id,
                care_group_id=patient.care_group_id,
                data_category=DataCategory.PATIENT_RECORD,
                action=Action.CREATE,
                answer=Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP, reason),
                now=now,
                purpose=recorded(org.id, kind.value),
            ),
        )
        rel = CareRelationship(
            id=uuid.uuid4().hex,
            patient_id=patient.id,
            organisation_id=org.id,
            kind=kind.value,
            start_time=start_time or now,
            end_time=end_time,
            create_time=now,
        )
        # A patient has one coordinating practice, whichever organisation it is.
        same_org = None if coordinating else org.id
        existing = uow.repo.open_care_relationship(patient.id, same_org, kind.value, now)
        if existing is None and not uow.repo.add_care_relationship(rel):
            existing = uow.repo.open_care_relationship(patient.id, same_org, kind.value, now)
            assert existing is not None  # a unique index refused the row for this one
        if existing is not None:
            uow.commit()  # the logged attempt
            raise errors.CareRelationshipExists(
                "an active care relationship of this kind exists",
                metadata={"care_relationship": relationship_name(existing)},
            )
        request.remember(uow.repo, relationship_name(rel))
        uow.commit()
        return rel


def list_care_relationships(
    deps: Deps, principal: Principal, patient_id: str, page: PageRequest
) -> Page[CareRelationship]:
    """The relationships the caller may see (identity.minimisation), a page at a time."""
    now = deps.clock()
    with deps.uow() as uow:
        patient = visible_patient(uow, principal, patient_id)
        patient = admit(
            uow,
            principal,
            patient,
            patient_id,
            DataCategory.PATIENT_RECORD,
            Action.READ,
            "LIST_CARE_RELATIONSHIPS",
            now,
        )
        scope = minimisation.relationship_scope(
            principal, coordinating=coordinates(uow, principal, patient.id, now)
        )
        items = uow.repo.care_relationships_in_scope(patient.id, scope, page.after(), page.limit)
        uow.commit()
        return Page.after_key(items, page, lambda item: item.id)


def end_care_relationship(
    deps: Deps, principal: Principal, patient_id: str, rel_id: str, end_time: dt.datetime | None
) -> CareRelationship:
    """Ends a relationship. A relationship the patient does not have is refused like a
    patient the caller may not manage (PERMISSION_DENIED ``NOT_RELATIONSHIP_MANAGER``,
    logged), for every caller: the answer tells nothing about what exists."""
    now = deps.clock()
    with deps.uow() as uow:
        patient = visible_patient(uow, principal, patient_id)
        rel = uow.repo.care_relationship(patient_id, rel_id) if patient else None
        organisation_id = rel.organisation_id if rel is not None else None
        if (
            patient is None
            or rel is None
            or not _may_manage(uow, principal, patient, organisation_id, now)
        ):
            refuse(
                uow,
                principal,
                patient_id[:128],
                patient.care_group_id if patient else care_group_of(principal),
                DataCategory.PATIENT_RECORD,
                Action.UPDATE,
                "END_CARE_RELATIONSHIP",
                now,
                NOT_MANAGER,
            )
        end = end_time or now
        if end <= rel.start_time:
            raise InvalidArgument.single("end_time", "must be after the start", "END_BEFORE_START")
        rel.end_time = end
        uow.repo.facts_changed(patient.id)
        append_log(
            uow,
            log_entry(
                event="END_CARE_RELATIONSHIP",
                principal=principal,
                patient_id=patient.id,
                care_group_id=patient.care_group_id,
                data_category=DataCategory.PATIENT_RECORD,
                action=Action.UPDATE,
                answer=Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP, "RELATIONSHIP_MANAGER"),
                now=now,
            ),
        )
        uow.commit()
        return rel

"""Care relationships: recording, listing and ending them.

Who records them: the care group's admin, an organisation for itself, and the coordinating
practice for any organisation. Who sees them: see :mod:`identity.minimisation`.

At most one relationship of a kind between a patient and an organisation is active: a second
create is ALREADY_EXISTS ``CARE_RELATIONSHIP_EXISTS`` naming the first (ErrorInfo metadata
``care_relationship``). A create first raises the patient's facts version, whose row lock
makes concurrent creates for the patient wait for each other, so the check sees what the
other committed; the partial unique index on open relationships (patient, organisation,
kind) holds it in the database as well, whatever path a row takes.

A patient identity does not know in the caller's care group, and one the caller may not
manage, are refused alike (PERMISSION_DENIED ``NOT_RELATIONSHIP_MANAGER``, logged).
"""

from __future__ import annotations

import datetime as dt
import uuid

from identity import errors, minimisation
from identity.models import (
    Action,
    CareRelationship,
    DataCategory,
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

MANAGING_ROLES = RECORDING_ROLES | {"provider", "sport-coach", "municipality-officer"}
NOT_MANAGER = "NOT_RELATIONSHIP_MANAGER"


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
    if principal.roles & ADMIN_ROLES and care_group_of(principal) == patient.care_group_id:
        return True
    if not principal.roles & MANAGING_ROLES:
        return False
    if organisation_id is not None and org_id_of(principal) == organisation_id:
        return True
    return coordinates(uow, principal, patient.id, now)


def _may_appoint_coordinator(principal: Principal, patient: Patient) -> bool:
    """Who names a patient's coordinating practice: the care group's admin only (the GP
    practice that registers a new patient becomes it at registration). A coordinator is
    changed by ending the current one first (the coordinator itself or the admin)."""
    return bool(principal.roles & ADMIN_ROLES) and care_group_of(principal) == (
        patient.care_group_id
    )


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
        if patient is None or not (
            _may_appoint_coordinator(principal, patient)
            if coordinating
            else _may_manage(uow, principal, patient, organisation_id, now)
        ):
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
                answer=Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP, "RELATIONSHIP_MANAGER"),
                now=now,
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
    """Ends a relationship. Only a caller who may manage the patient's relationships learns
    that a relationship does not exist (NOT_FOUND); anyone else is refused either way."""
    now = deps.clock()
    with deps.uow() as uow:
        patient = visible_patient(uow, principal, patient_id)
        rel = uow.repo.care_relationship(patient_id, rel_id) if patient else None
        organisation_id = rel.organisation_id if rel is not None else None
        if patient is None or not _may_manage(uow, principal, patient, organisation_id, now):
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
        if rel is None:
            raise errors.CareRelationshipNotFound("care relationship not found")
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

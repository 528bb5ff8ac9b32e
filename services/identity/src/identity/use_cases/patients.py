"""Patients: registering by BSN, reading and looking up by BSN.

A patient's id is chosen by the server (32 random hex digits) unless the care group's admin
chooses it (``patient_id``, for provisioning a patient whose id is known elsewhere, e.g. a
realm account's ``carenet_patient``). Anyone else naming an id is refused
(PERMISSION_DENIED ``PATIENT_ID_NOT_PERMITTED``) before anything is looked up, so that a
chosen id never tells whether a patient with that id exists. The admin choosing an id that
is taken gets ALREADY_EXISTS ``PATIENT_ID_TAKEN``, logged as a refused registration.

A registration by a clinical role of a care-providing organisation (GP practice, hospital)
records that organisation's care relationship with the patient (coordinating for a GP
practice when nobody coordinates yet, treating otherwise), also for a patient the care group
already knows by that BSN: that is the organisation's own claim of a treatment relationship
(``SELF_DECLARED``), written to the patient's access log as what happened (see
identity.use_cases.relationships)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid

from identity import errors
from identity.models import (
    Action,
    CareRelationship,
    DataCategory,
    Organisation,
    OrganisationType,
    Patient,
    RelationshipKind,
    normalise_bsn,
)
from identity.policy import Answer, Basis, Decision
from identity.unit_of_work import UnitOfWork
from identity.use_cases.common import (
    ADMIN_ROLES,
    NO_REQUEST_ID,
    REGISTER_ROLES,
    care_group_of,
    org_id_of,
)
from identity.use_cases.decisions import admit, append_log, log_entry, visible_patient
from identity.use_cases.deps import Deps
from identity.use_cases.relationships import SELF_DECLARED, may_declare, recorded
from servicekit import names
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument, Violations
from servicekit.idempotency import IdempotentRequest


def bsn_hash(pepper: bytes, bsn: str) -> str:
    return hmac.new(pepper, bsn.encode(), hashlib.sha256).hexdigest()


def _valid_bsn(bsn: str) -> str:
    normal = normalise_bsn(bsn)
    if normal is None:
        raise InvalidArgument.single("bsn", "must be 9 digits that pass the 11-test", "INVALID_BSN")
    return normal


# The log's patient for an access to no one patient (a look-up of an unknown BSN, the whole
# care group's log, a registration refused because the chosen id is taken).
UNNAMED_PATIENT = "*"
PATIENT_ID_NOT_PERMITTED = "PATIENT_ID_NOT_PERMITTED"


def _check_registration(principal: Principal, bsn: str, patient_id: str) -> None:
    """What refuses a registration whatever the patient: its shape and the caller's role."""
    v = Violations()
    if normalise_bsn(bsn) is None:
        v.add("bsn", "must be 9 digits that pass the 11-test", "INVALID_BSN")
    if patient_id and not names.valid_id(patient_id):
        v.add("patient_id", "2-63 lower-case letters, digits and dashes", "INVALID_PATIENT_ID")
    v.raise_if_any()
    if not principal.roles & REGISTER_ROLES:
        raise errors.RoleNotPermitted("this role may not register patients")
    if patient_id and not principal.roles & ADMIN_ROLES:
        raise errors.RoleNotPermitted(
            "only the care group's admin may choose a patient id",
            reason=PATIENT_ID_NOT_PERMITTED,
        )


def _new_patient(
    uow: UnitOfWork,
    principal: Principal,
    care_group_id: str,
    digest: str,
    patient_id: str,
    now: dt.datetime,
) -> Patient:
    """A new patient, its id the admin's choice or a random one; a chosen id that is taken
    is refused (logged, as a registration of no one patient)."""
    new_id = patient_id or uuid.uuid4().hex
    if uow.repo.patient(new_id) is not None:
        append_log(
            uow,
            log_entry(
                event="REGISTER_PATIENT",
                principal=principal,
                patient_id=UNNAMED_PATIENT,
                care_group_id=care_group_id,
                data_category=DataCategory.PATIENT_RECORD,
                action=Action.CREATE,
                answer=Answer(Decision.DENY, Basis.NONE, "PATIENT_ID_TAKEN"),
                now=now,
            ),
        )
        uow.commit()
        raise errors.PatientIdTaken("this patient id is taken")
    patient = Patient(
        id=new_id,
        care_group_id=care_group_id,
        bsn_hash=digest,
        create_time=now,
        update_time=now,
    )
    uow.repo.add(patient)
    return patient


def _declare_own_relationship(
    uow: UnitOfWork, patient: Patient, org: Organisation, now: dt.datetime
) -> RelationshipKind | None:
    """Records the registering organisation's relationship unless it has an active one:
    coordinating for a GP practice when nobody coordinates the patient yet (one coordinator
    per patient), treating otherwise. The kind recorded, or None."""
    # Locks the patient's row first, so that two registrations of one patient by one
    # organisation cannot both add a relationship (see identity.use_cases.relationships).
    uow.repo.facts_changed(patient.id)
    if any(r.active_at(now) for r in uow.repo.care_relationships(patient.id, org.id)):
        return None
    kind = (
        RelationshipKind.COORDINATING
        if org.type == OrganisationType.GP_PRACTICE
        and uow.repo.open_care_relationship(
            patient.id, None, RelationshipKind.COORDINATING.value, now
        )
        is None
        else RelationshipKind.TREATING
    )
    uow.repo.add(
        CareRelationship(
            id=uuid.uuid4().hex,
            patient_id=patient.id,
            organisation_id=org.id,
            kind=kind.value,
            start_time=now,
            create_time=now,
        )
    )
    return kind


def register_patient(
    deps: Deps,
    principal: Principal,
    bsn: str,
    patient_id: str = "",
    request: IdempotentRequest = NO_REQUEST_ID,
) -> Patient:
    """Registers a patient by BSN in the caller's care group; a clinical caller's
    organisation gets a care relationship (see the module). Only the care group's admin may
    choose ``patient_id``."""
    _check_registration(principal, bsn, patient_id)
    care_group_id = care_group_of(principal)
    digest = bsn_hash(deps.bsn_pepper, _valid_bsn(bsn))
    now = deps.clock()
    with deps.uow() as uow:
        replay = request.replayed(uow.repo)
        if replay is not None:
            existing = uow.repo.patient(names.parse_one(replay, "patients"))
            if existing is None:
                raise errors.PatientNotFound("patient not found")
            return existing
        org = uow.repo.organisation(org_id_of(principal))
        if org is None or org.care_group_id != care_group_id:
            raise errors.RoleNotPermitted("unknown organisation", reason="UNKNOWN_ORGANISATION")
        declares = may_declare(principal, org.type)
        if not declares and not principal.roles & ADMIN_ROLES:
            raise errors.RoleNotPermitted(
                "only a care-providing organisation registers patients",
                reason="NOT_CARE_PROVIDER",
            )
        patient = uow.repo.patient_by_bsn_hash(care_group_id, digest)
        registered = patient is None
        if patient is None:
            patient = _new_patient(uow, principal, care_group_id, digest, patient_id, now)
        kind = _declare_own_relationship(uow, patient, org, now) if declares else None
        # What happened: a new patient registered (with the registrar's relationship), a
        # known patient's relationship recorded, or a known patient returned (nothing new).
        if kind is not None:
            answer = Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP, SELF_DECLARED)
            event = "REGISTER_PATIENT" if registered else "CREATE_CARE_RELATIONSHIP"
            purpose = recorded(org.id, kind.value)
        else:
            answer = Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP, "REGISTRATION")
            event, purpose = "REGISTER_PATIENT", ""
        append_log(
            uow,
            log_entry(
                event=event,
                principal=principal,
                patient_id=patient.id,
                care_group_id=care_group_id,
                data_category=DataCategory.PATIENT_RECORD,
                action=Action.CREATE,
                answer=answer,
                now=now,
                purpose=purpose,
            ),
        )
        request.remember(uow.repo, f"patients/{patient.id}")
        uow.commit()
        return patient


def get_patient(deps: Deps, principal: Principal, patient_id: str) -> Patient:
    """The patient, if the caller may see their registration (what of it the caller gets is
    identity.minimisation's rule)."""
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
            "GET_PATIENT",
            now,
        )
        uow.commit()
        return patient


def lookup_patient(deps: Deps, principal: Principal, bsn: str, purpose: str = "") -> Patient:
    normal = _valid_bsn(bsn)
    if not principal.roles & REGISTER_ROLES:
        raise errors.RoleNotPermitted("this role may not look patients up")
    now = deps.clock()
    with deps.uow() as uow:
        patient = uow.repo.patient_by_bsn_hash(
            care_group_of(principal), bsn_hash(deps.bsn_pepper, normal)
        )
        # Refused like a registered patient without a relationship: a look-up does not
        # tell whether a BSN is registered (RegisterPatient is the way to find out).
        patient = admit(
            uow,
            principal,
            patient,
            UNNAMED_PATIENT,
            DataCategory.PATIENT_RECORD,
            Action.READ,
            "LOOKUP_PATIENT",
            now,
        )
        uow.commit()
        return patient

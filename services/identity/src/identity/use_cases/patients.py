"""Patients: registering by BSN, reading and looking up by BSN."""

from __future__ import annotations

import hashlib
import hmac
import uuid

from identity import errors
from identity.models import (
    Action,
    CareRelationship,
    DataCategory,
    OrganisationType,
    Patient,
    RelationshipKind,
    normalise_bsn,
)
from identity.policy import Answer, Basis, Decision
from identity.use_cases.common import NO_REQUEST_ID, REGISTER_ROLES, care_group_of, org_id_of
from identity.use_cases.decisions import admit, append_log, log_entry, visible_patient
from identity.use_cases.deps import Deps
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


def register_patient(
    deps: Deps,
    principal: Principal,
    bsn: str,
    patient_id: str = "",
    request: IdempotentRequest = NO_REQUEST_ID,
) -> Patient:
    """Registers a patient by BSN in the caller's care group; the caller's organisation gets
    a care relationship (coordinating for a GP practice, treating otherwise)."""
    v = Violations()
    if normalise_bsn(bsn) is None:
        v.add("bsn", "must be 9 digits that pass the 11-test", "INVALID_BSN")
    if patient_id and not names.valid_id(patient_id):
        v.add("patient_id", "2-63 lower-case letters, digits and dashes", "INVALID_PATIENT_ID")
    v.raise_if_any()
    if not principal.roles & REGISTER_ROLES:
        raise errors.RoleNotPermitted("this role may not register patients")
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
        patient = uow.repo.patient_by_bsn_hash(care_group_id, digest)
        if patient is None:
            new_id = patient_id or uuid.uuid4().hex
            if uow.repo.patient(new_id) is not None:
                raise errors.PatientIdTaken("this patient id is taken")
            patient = Patient(
                id=new_id,
                care_group_id=care_group_id,
                bsn_hash=digest,
                create_time=now,
                update_time=now,
            )
            uow.repo.add(patient)
        if org.type != OrganisationType.CARE_GROUP:
            # Locks the patient's row first, so that two registrations of one patient by one
            # organisation cannot both add a relationship (see identity.use_cases.relationships).
            uow.repo.facts_changed(patient.id)
        if org.type != OrganisationType.CARE_GROUP and not any(
            r.active_at(now) for r in uow.repo.care_relationships(patient.id, org.id)
        ):
            # The practice coordinates only a patient nobody coordinates yet (one
            # coordinator per patient); otherwise it treats.
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
        answer = Answer(Decision.PERMIT, Basis.CARE_RELATIONSHIP, "REGISTRATION")
        append_log(
            uow,
            log_entry(
                event="REGISTER_PATIENT",
                principal=principal,
                patient_id=patient.id,
                care_group_id=care_group_id,
                data_category=DataCategory.PATIENT_RECORD,
                action=Action.CREATE,
                answer=answer,
                now=now,
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


# The log's patient for an access to no one patient (a look-up of an unknown BSN, the whole
# care group's log).
UNNAMED_PATIENT = "*"


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

"""Consent (after Mitz): recording, reading and withdrawing a patient's consent choices.

The patient manages their own consent. A clinician with a care relationship may read it;
only a clinician of the patient's coordinating practice may record or withdraw it for the
patient (on the patient's instruction), and never a consent that opens data to the
clinician's own organisation (CONSENT_RECORDER_NOT_ALLOWED); every other role is refused.
Each access is logged, the refused ones too, so the patient sees who asked. A patient the
caller cannot see is refused the same way whether it exists or not: the access is decided
and logged first, and only a caller who may see the patient's consents learns that a
consent does not exist (NOT_FOUND).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from identity import errors
from identity.models import (
    Action,
    Consent,
    ConsentEvent,
    DataCategory,
    OrganisationType,
    Patient,
)
from identity.policy import Answer, Basis, Decision
from identity.unit_of_work import UnitOfWork
from identity.use_cases.common import (
    NO_REQUEST_ID,
    RECORDING_ROLES,
    care_group_of,
    org_id_of,
)
from identity.use_cases.decisions import (
    decide_and_log,
    refuse,
    refuse_unknown_patient,
    visible_patient,
)
from identity.use_cases.deps import Deps
from identity.use_cases.relationships import coordinates
from servicekit import names
from servicekit.auth import Principal
from servicekit.errors import Violations
from servicekit.idempotency import IdempotentRequest
from servicekit.paging import Page, PageRequest


@dataclass(frozen=True)
class ConsentInput:
    data_category: DataCategory | None
    record_holder_type: OrganisationType | None = None
    record_holder_id: str = ""
    requester_type: OrganisationType | None = None
    requester_id: str = ""
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None


def _consent_access(
    uow: UnitOfWork,
    principal: Principal,
    patient: Patient | None,
    patient_id: str,
    action: Action,
    event: str,
    now: dt.datetime,
    refine: Refine | None = None,
) -> Patient:
    """Decides and logs the access; returns the patient, or raises PERMISSION_DENIED (after
    committing the log entry). ``patient`` None: identity does not know it in the caller's
    care group, and the caller is refused as for a patient without a relationship."""
    if not (principal.is_patient or principal.roles & RECORDING_ROLES):
        care_group_id = patient.care_group_id if patient else care_group_of(principal)
        refuse(
            uow,
            principal,
            patient_id[:128],
            care_group_id,
            DataCategory.CONSENT,
            action,
            event,
            now,
            "ROLE_NOT_PERMITTED",
        )
    if patient is None:
        refuse_unknown_patient(uow, principal, patient_id, DataCategory.CONSENT, action, event, now)
    decide_and_log(
        uow,
        principal,
        patient,
        DataCategory.CONSENT,
        action,
        event,
        now,
        refine=refine(uow, patient, now) if refine else None,
    )
    return patient


CONSENT_RECORDER_NOT_ALLOWED = "CONSENT_RECORDER_NOT_ALLOWED"
Refine = Callable[[UnitOfWork, Patient, dt.datetime], Callable[[Answer], Answer]]


def _recorder_rule(principal: Principal, data: ConsentInput | None) -> Refine:
    """Who records (``data`` given) or withdraws (None) a consent: the patient; otherwise
    only a clinician of the patient's coordinating practice, on the patient's instruction,
    and never a consent that would open data to the recorder's own organisation (the
    requester naming it or its type). Anyone else the table permits is refused
    CONSENT_RECORDER_NOT_ALLOWED."""

    def rule(uow: UnitOfWork, patient: Patient, now: dt.datetime) -> Callable[[Answer], Answer]:
        def refine(answer: Answer) -> Answer:
            if not answer.permitted or principal.is_patient:
                return answer
            allowed = coordinates(uow, principal, patient.id, now)
            if allowed and data is not None:
                own_id = org_id_of(principal)
                own = uow.repo.organisation_ref(own_id)
                opens_to_self = data.requester_id == own_id or (
                    not data.requester_id
                    and own is not None
                    and data.requester_type is not None
                    and data.requester_type.value == own.type
                )
                allowed = not opens_to_self
            if allowed:
                return answer
            return Answer(Decision.DENY, Basis.NONE, CONSENT_RECORDER_NOT_ALLOWED)

        return refine

    return rule


def _validate_consent(uow: UnitOfWork, data: ConsentInput, care_group_id: str) -> None:
    v = Violations()
    if data.data_category is None:
        v.add("consent.data_category", "is required", "DATA_CATEGORY_REQUIRED")
    for side, type_, org_id in (
        ("record_holder", data.record_holder_type, data.record_holder_id),
        ("requester", data.requester_type, data.requester_id),
    ):
        if type_ is None and not org_id:
            v.add(f"consent.{side}", "name a category or an organisation", "SELECTOR_REQUIRED")
        elif org_id:
            org = uow.repo.organisation(org_id)
            if org is None or org.care_group_id != care_group_id:
                v.add(
                    f"consent.{side}.organisation", "unknown organisation", "UNKNOWN_ORGANISATION"
                )
    if data.start_time and data.end_time and data.end_time <= data.start_time:
        v.add("consent.end_time", "must be after start_time", "END_BEFORE_START")
    v.raise_if_any()


def create_consent(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    data: ConsentInput,
    request: IdempotentRequest = NO_REQUEST_ID,
) -> Consent:
    now = deps.clock()
    with deps.uow() as uow:
        replay = request.replayed(uow.repo)
        if replay is not None:
            p_id, c_id = names.parse(replay, "patients", "consents")
            existing = uow.repo.consent(p_id, c_id)
            if existing is None:
                raise errors.ConsentNotFound("consent not found")
            return existing
        # Organisations named in the choice are checked against the caller's care group, so
        # that the answer does not depend on the patient.
        _validate_consent(uow, data, care_group_of(principal))
        patient = _consent_access(
            uow,
            principal,
            visible_patient(uow, principal, patient_id),
            patient_id,
            Action.CREATE,
            "CREATE_CONSENT",
            now,
            _recorder_rule(principal, data),
        )
        assert data.data_category is not None
        consent = Consent(
            id=uuid.uuid4().hex,
            patient_id=patient.id,
            record_holder_type=None
            if data.record_holder_id
            else data.record_holder_type and data.record_holder_type.value,
            record_holder_id=data.record_holder_id or None,
            data_category=data.data_category.value,
            requester_type=None
            if data.requester_id
            else data.requester_type and data.requester_type.value,
            requester_id=data.requester_id or None,
            start_time=data.start_time or now,
            end_time=data.end_time,
            recorded_by=principal.responsible_user,
            version=1,
            create_time=now,
            update_time=now,
        )
        uow.repo.add(consent)
        uow.repo.facts_changed(patient.id)
        uow.repo.add(
            ConsentEvent(
                consent_id=consent.id,
                patient_id=patient.id,
                type="given",
                actor=principal.responsible_user,
                event_time=now,
            )
        )
        request.remember(uow.repo, f"patients/{patient.id}/consents/{consent.id}")
        uow.commit()
        return consent


def _readable_consent(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: str,
    consent_id: str,
    action: Action,
    event: str,
    now: dt.datetime,
    refine: Refine | None = None,
) -> tuple[Patient, Consent]:
    """The consent, once the caller may see the patient's consents (the access is logged);
    NOT_FOUND only for such a caller."""
    visible = visible_patient(uow, principal, patient_id)
    patient = _consent_access(uow, principal, visible, patient_id, action, event, now, refine)
    consent = uow.repo.consent(patient.id, consent_id)
    if consent is None:
        uow.commit()
        raise errors.ConsentNotFound("consent not found")
    return patient, consent


def get_consent(deps: Deps, principal: Principal, patient_id: str, consent_id: str) -> Consent:
    now = deps.clock()
    with deps.uow() as uow:
        _, consent = _readable_consent(
            uow, principal, patient_id, consent_id, Action.READ, "GET_CONSENT", now
        )
        uow.commit()
        return consent


def list_consents(
    deps: Deps, principal: Principal, patient_id: str, page: PageRequest
) -> Page[Consent]:
    now = deps.clock()
    with deps.uow() as uow:
        patient = _consent_access(
            uow,
            principal,
            visible_patient(uow, principal, patient_id),
            patient_id,
            Action.READ,
            "LIST_CONSENTS",
            now,
        )
        items = uow.repo.consents(patient.id, after=page.after(), limit=page.limit)
        uow.commit()
        return Page.after_key(items, page, lambda item: item.id)


def withdraw_consent(
    deps: Deps, principal: Principal, patient_id: str, consent_id: str, etag: str = ""
) -> Consent:
    now = deps.clock()
    with deps.uow() as uow:
        patient, consent = _readable_consent(
            uow,
            principal,
            patient_id,
            consent_id,
            Action.UPDATE,
            "WITHDRAW_CONSENT",
            now,
            _recorder_rule(principal, None),
        )
        if etag and etag != consent.etag:
            uow.commit()
            raise errors.EtagMismatch("the consent has changed; read it again")
        if consent.withdraw_time is not None:
            uow.commit()
            raise errors.ConsentAlreadyWithdrawn("the consent was already withdrawn")
        consent.withdraw_time = now
        consent.touch(now)
        uow.repo.facts_changed(patient.id)
        uow.repo.add(
            ConsentEvent(
                consent_id=consent.id,
                patient_id=patient.id,
                type="withdrawn",
                actor=principal.responsible_user,
                event_time=now,
            )
        )
        uow.commit()
        return consent


def list_consent_events(
    deps: Deps, principal: Principal, patient_id: str, page: PageRequest
) -> Page[ConsentEvent]:
    now = deps.clock()
    with deps.uow() as uow:
        patient = _consent_access(
            uow,
            principal,
            visible_patient(uow, principal, patient_id),
            patient_id,
            Action.READ,
            "LIST_CONSENT_EVENTS",
            now,
        )
        items = uow.repo.consent_events(patient.id, page.after(0), page.limit)
        uow.commit()
        return Page.after_key(items, page, lambda item: item.id)

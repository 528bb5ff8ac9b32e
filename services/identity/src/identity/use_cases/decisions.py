"""Deciding an access to patient data and logging it: every read or write of patient data
passes through :func:`decide_and_log` (or :func:`admit`), which applies the decision table
of :mod:`identity.policy` and appends one access-log entry in the same transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import NoReturn

from identity import errors
from identity.models import (
    Action,
    AppendedEntry,
    DataCategory,
    LogRecord,
    Patient,
    PatientFacts,
)
from identity.policy import Answer, Basis, Decision, Question, decide, decide_unknown_patient
from identity.unit_of_work import UnitOfWork
from identity.use_cases.common import care_group_of, org_id_of
from servicekit.auth import Principal
from servicekit.errors import Aborted, InvalidArgument


def append_log(uow: UnitOfWork, record: LogRecord) -> AppendedEntry:
    appended = uow.repo.append_log(record, uow.log_stripe)
    assert appended is not None  # only a guarded append can be refused
    return appended


def log_entry(
    *,
    event: str,
    principal: Principal,
    patient_id: str,
    care_group_id: str,
    data_category: DataCategory,
    action: Action,
    answer: Answer,
    now: dt.datetime,
    purpose: str = "",
    emergency_reason: str = "",
    access_point: str = "",
) -> LogRecord:
    return LogRecord(
        event=event,
        event_time=now,
        patient_id=patient_id[:128],
        care_group_id=care_group_id,
        user_id=principal.subject,
        responsible_user=principal.responsible_user,
        organisation_id=org_id_of(principal),
        roles=",".join(sorted(principal.roles)),
        data_category=data_category.value,
        action=action.value,
        purpose=purpose[:200],
        decision=answer.decision.value,
        basis=answer.basis.value,
        reason=answer.reason,
        emergency=answer.emergency,
        emergency_reason=emergency_reason[:1000],
        access_point=(access_point or principal.client_id)[:200],
    )


def _decide(
    uow: UnitOfWork,
    subject: Principal,
    patient_id: str,
    patient_care_group: str,
    category: DataCategory,
    action: Action,
    now: dt.datetime,
    facts: PatientFacts,
    *,
    record_holder_id: str = "",
    referral_target_id: str = "",
    emergency_reason: str = "",
    known: bool = True,
) -> Answer:
    """The decision table's answer; ``known=False`` for a patient identity does not know in
    the subject's care group (see :func:`decide_unknown_patient`). An empty record holder
    stays unnamed: the table reads it as the subject's own, except for measurements."""
    org_id = org_id_of(subject)
    organisation = uow.repo.organisation_ref(org_id) if org_id else None
    record_holder = organisation if record_holder_id else None
    if record_holder_id and record_holder_id != org_id:
        record_holder = uow.repo.organisation_ref(record_holder_id)
        if record_holder is None or record_holder.care_group_id != patient_care_group:
            raise InvalidArgument.single(
                "record_holder", "unknown organisation", "UNKNOWN_RECORD_HOLDER"
            )
    relationships = facts.relationships if organisation else ()
    needs_consent = (
        record_holder is not None
        and organisation is not None
        and record_holder.id != organisation.id
    )
    consents = facts.consents if needs_consent else ()
    question = Question(
        roles=subject.roles,
        subject_patient_id=subject.patient.removeprefix("patients/"),
        subject_organisation=organisation,
        subject_care_group_id=care_group_of(subject),
        patient_id=patient_id,
        data_category=category,
        action=action,
        record_holder=record_holder,
        relationships=relationships,
        consents=consents,
        referral_target_id=referral_target_id,
        emergency_reason=emergency_reason,
        now=now,
    )
    return decide(question) if known else decide_unknown_patient(question)


NO_FACTS = PatientFacts(0, (), ())


def unknown_patient_answer(
    uow: UnitOfWork,
    subject: Principal,
    patient_id: str,
    category: DataCategory,
    action: Action,
    now: dt.datetime,
    *,
    record_holder_id: str = "",
    emergency_reason: str = "",
) -> Answer:
    """The answer for a patient identity does not know in the subject's care group (none
    such, or another care group's): what a patient without any relationship or consent
    gets, so that no answer tells whether a patient exists."""
    return _decide(
        uow,
        subject,
        patient_id,
        care_group_of(subject),
        category,
        action,
        now,
        NO_FACTS,
        record_holder_id=record_holder_id,
        emergency_reason=emergency_reason,
        known=False,
    )


def refuse(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: str,
    care_group_id: str,
    category: DataCategory,
    action: Action,
    event: str,
    now: dt.datetime,
    reason: str,
) -> NoReturn:
    """Logs a refused attempt (NEN 7513 logs those too), commits, and raises
    PERMISSION_DENIED with ``reason`` and a message that is the same for every patient."""
    append_log(
        uow,
        log_entry(
            event=event,
            principal=principal,
            patient_id=patient_id,
            care_group_id=care_group_id,
            data_category=category,
            action=action,
            answer=Answer(Decision.DENY, Basis.NONE, reason),
            now=now,
        ),
    )
    uow.commit()
    raise errors.AccessDenied("access denied", reason=reason)


def refuse_unknown_patient(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: str,
    category: DataCategory,
    action: Action,
    event: str,
    now: dt.datetime,
) -> NoReturn:
    """The refusal for a patient the caller cannot see because identity does not know it in
    the caller's care group: the same error, and the same log entry, as for a patient who
    exists without any relationship to the caller."""
    answer = unknown_patient_answer(uow, principal, patient_id, category, action, now)
    refuse(
        uow,
        principal,
        patient_id[:128],
        care_group_of(principal),
        category,
        action,
        event,
        now,
        answer.reason,
    )


STALE_FACTS_ATTEMPTS = 3


def decide_and_append(
    uow: UnitOfWork,
    subject: Principal,
    patient_id: str,
    care_group_id: str,
    category: DataCategory,
    action: Action,
    now: dt.datetime,
    *,
    event: str,
    purpose: str = "",
    emergency_reason: str = "",
    access_point: str = "",
    record_holder_id: str = "",
    referral_target_id: str = "",
    refine: Callable[[Answer], Answer] | None = None,
) -> tuple[Answer, AppendedEntry]:
    """Decides on the patient's cached facts and logs the decision in one statement that
    holds only if those facts are still current; if they changed meanwhile, reads them again
    and decides again. So a decision is never logged (or answered) on outdated facts."""
    for _ in range(STALE_FACTS_ATTEMPTS):
        facts = uow.repo.current_facts(patient_id)
        if facts is None:
            raise errors.PatientNotFound("patient not found")
        answer = _decide(
            uow,
            subject,
            patient_id,
            care_group_id,
            category,
            action,
            now,
            facts,
            record_holder_id=record_holder_id,
            referral_target_id=referral_target_id,
            emergency_reason=emergency_reason,
        )
        if refine is not None:
            answer = refine(answer)
        entry = uow.repo.append_log(
            log_entry(
                event=event,
                principal=subject,
                patient_id=patient_id,
                care_group_id=care_group_id,
                data_category=category,
                action=action,
                answer=answer,
                now=now,
                purpose=purpose,
                emergency_reason=emergency_reason,
                access_point=access_point,
            ),
            uow.log_stripe,
            facts.version,
        )
        if entry is not None:
            return answer, entry
        uow.repo.forget_facts(patient_id)
    raise Aborted(
        "the patient's care relationships or consents keep changing; retry",
        reason="FACTS_CHANGING",
    )


def admit(
    uow: UnitOfWork,
    principal: Principal,
    patient: Patient | None,
    log_patient_id: str,
    category: DataCategory,
    action: Action,
    event: str,
    now: dt.datetime,
) -> Patient:
    """``patient`` once the table permits the access (one log entry either way); a patient
    identity does not know in the caller's care group (None) is refused exactly like one
    without a relationship, logged under ``log_patient_id``."""
    if patient is None:
        refuse_unknown_patient(uow, principal, log_patient_id, category, action, event, now)
    decide_and_log(uow, principal, patient, category, action, event, now)
    return patient


def visible_patient(uow: UnitOfWork, principal: Principal, patient_id: str) -> Patient | None:
    """The patient, if it exists in the caller's care group. Another tenant's is invisible."""
    patient = uow.repo.patient(patient_id)
    if patient is None or patient.care_group_id != care_group_of(principal):
        return None
    return patient


def decide_and_log(
    uow: UnitOfWork,
    principal: Principal,
    patient: Patient,
    category: DataCategory,
    action: Action,
    event: str,
    now: dt.datetime,
    *,
    refine: Callable[[Answer], Answer] | None = None,
) -> Answer:
    """Decides, logs, and raises PERMISSION_DENIED on a denial (after committing the log).
    ``refine`` may turn the table's answer into a denial before it is logged (a rule of the
    use case on top of the table), so that the one entry logged is the real outcome."""
    answer, _ = decide_and_append(
        uow,
        principal,
        patient.id,
        patient.care_group_id,
        category,
        action,
        now,
        event=event,
        refine=refine,
    )
    if not answer.permitted:
        uow.commit()
        raise errors.AccessDenied("access denied", reason=answer.reason)
    return answer

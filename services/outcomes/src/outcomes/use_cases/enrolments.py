"""Enrolments: a patient's registration in a programme at a practice (the enrolment's
record holder). Every write and read is authorized by identity first (outcomes.access)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from outcomes import errors, positions
from outcomes.access import permitted_holders, require_permit
from outcomes.base import care_group_of, refuse_insurer, refuse_patient, valid_patient_id
from outcomes.deps import Deps
from outcomes.models import Enrolment, Programme, Sex
from outcomes.unit_of_work import UnitOfWork
from servicekit import dutch, names
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument, Violations
from servicekit.identity_client import Access, BatchAccessQuestion
from servicekit.paging import Page, PageRequest

MAX_ENROLMENT_BATCH = 1000


@dataclass(frozen=True)
class EnrolmentInput:
    patient_id: str
    programme: Programme | None
    practice_id: str
    practice_agb: str
    start_time: dt.datetime | None
    main_practitioner: str
    birth_year: int
    sex: Sex | None


def validate_enrolment(
    data: EnrolmentInput, now: dt.datetime, v: Violations, prefix: str = "enrolment"
) -> None:
    if not names.valid_id(data.patient_id) and not valid_patient_id(data.patient_id):
        v.add("parent", "must look like patients/{patient}", "INVALID_PATIENT")
    if data.programme is None:
        v.add(f"{prefix}.programme", "is required", "PROGRAMME_REQUIRED")
    if not names.valid_id(data.practice_id):
        v.add(
            f"{prefix}.practice", "must look like organisations/{organisation}", "INVALID_PRACTICE"
        )
    if not dutch.is_agb(data.practice_agb):
        v.add(f"{prefix}.practice_agb", "an AGB code has exactly 8 digits", "INVALID_AGB_CODE")
    if data.start_time is None:
        v.add(f"{prefix}.start_time", "is required", "START_TIME_REQUIRED")
    elif data.start_time > now:
        v.add(f"{prefix}.start_time", "must not be in the future", "FUTURE_TIME")
    if not 1900 <= data.birth_year <= now.year:
        v.add(f"{prefix}.birth_year", f"between 1900 and {now.year}", "INVALID_BIRTH_YEAR")
    if data.sex is None:
        v.add(f"{prefix}.sex", "is required", "SEX_REQUIRED")
    if len(data.main_practitioner) > 200:
        v.add(f"{prefix}.main_practitioner", "at most 200 characters", "MAIN_PRACTITIONER_TOO_LONG")


def _new_enrolment(care_group_id: str, data: EnrolmentInput, now: dt.datetime) -> Enrolment:
    assert data.programme is not None and data.sex is not None and data.start_time is not None
    return Enrolment(
        care_group_id=care_group_id,
        patient_id=data.patient_id,
        programme=data.programme.value,
        practice_id=data.practice_id,
        practice_agb=data.practice_agb,
        start_time=data.start_time,
        main_practitioner=data.main_practitioner,
        birth_year=data.birth_year,
        sex=data.sex.value,
        create_time=now,
    )


def store_enrolment(
    uow: UnitOfWork, care_group_id: str, data: EnrolmentInput, now: dt.datetime
) -> Enrolment:
    assert data.programme is not None
    existing = uow.repo.enrolment(care_group_id, data.patient_id, data.programme.value)
    candidate = _new_enrolment(care_group_id, data, now)
    if existing is not None:
        if existing.same_as(candidate):
            return existing  # a retried registration
        raise errors.EnrolmentExists(
            "the patient is already enrolled in this programme with other details"
        )
    uow.repo.add(candidate)
    return candidate


def create_enrolment(deps: Deps, principal: Principal, data: EnrolmentInput) -> Enrolment:
    now = deps.clock()
    v = Violations()
    validate_enrolment(data, now, v)
    v.raise_if_any()
    refuse_insurer(principal)
    refuse_patient(principal)
    require_permit(deps, principal, data.patient_id, "enrolment")
    with deps.uow() as uow:
        enrolment = store_enrolment(uow, care_group_of(principal), data, now)
        uow.commit()
        return enrolment


@dataclass(frozen=True)
class EnrolmentResult:
    patient_id: str
    enrolment: Enrolment | None
    rejection_reason: str


def batch_create_enrolments(
    deps: Deps, principal: Principal, items: Sequence[EnrolmentInput]
) -> list[EnrolmentResult]:
    if not items or len(items) > MAX_ENROLMENT_BATCH:
        raise InvalidArgument.single(
            "requests", f"between 1 and {MAX_ENROLMENT_BATCH}", "INVALID_BATCH_SIZE"
        )
    refuse_insurer(principal)
    refuse_patient(principal)
    now = deps.clock()
    reasons: dict[int, str] = {}
    for i, item in enumerate(items):
        v = Violations()
        validate_enrolment(item, now, v)
        if v:
            reasons[i] = v.items[0].reason
    valid_patients = [it.patient_id for i, it in enumerate(items) if i not in reasons]
    decisions = (
        deps.identity.authorize_many(
            BatchAccessQuestion(principal, valid_patients, Access.CREATE, "enrolment")
        )
        if valid_patients
        else {}
    )
    results: list[EnrolmentResult] = []
    with deps.uow() as uow:
        for i, item in enumerate(items):
            if i in reasons:
                results.append(EnrolmentResult(item.patient_id, None, reasons[i]))
                continue
            decision = decisions[item.patient_id]
            if not decision.permitted:
                results.append(EnrolmentResult(item.patient_id, None, decision.reason))
                continue
            try:
                with uow.savepoint():
                    enrolment = store_enrolment(uow, care_group_of(principal), item, now)
            except errors.EnrolmentExists as exc:
                results.append(EnrolmentResult(item.patient_id, None, exc.reason))
                continue
            results.append(EnrolmentResult(item.patient_id, enrolment, ""))
        uow.commit()
    return results


def list_enrolments(
    deps: Deps, principal: Principal, patient_id: str, page: PageRequest
) -> Page[Enrolment]:
    """The patient's enrolments at the practices whose records the caller may read."""
    refuse_insurer(principal)
    refuse_patient(principal)
    after = positions.after_row(page.position)
    care_group = care_group_of(principal)
    with deps.uow() as uow:
        holders = uow.repo.enrolment_practices(care_group, patient_id)
    permitted = permitted_holders(deps, principal, patient_id, holders, "enrolments")
    with deps.uow() as uow:
        items = uow.repo.enrolments(care_group, patient_id, permitted, after, page.limit)
    return Page.of(items, page, lambda e: {"id": e.id})

"""Enrolments and the reading of a patient's measurements: the use cases that touch one
patient's data, each authorized by identity (data category MEASUREMENTS) first.

**Record holders.** A measurement's record holder is the organisation that submitted it
(the ingesting user's organisation: the measurement is a copy of that organisation's
record); an enrolment's is its practice. A read asks identity once per distinct record
holder of the patient's data, naming that holder, so that identity applies the rule that
fits: a caller reading its own organisation's record needs a care relationship, a caller
reading another organisation's record needs a care relationship *and* the patient's consent
for that record holder, data category and requester. Only the data of holders that permit
is returned; each question is one decision and one access-log entry at identity. A patient
with no data of this kind is asked about as the caller's own organisation's record (named as
record holder), so that the answer still depends on the caller's care relationship.

**One refusal.** A refusal is identity's (servicekit.authorization.refusal): PERMISSION_DENIED
with identity's reason and that reason's fixed message. identity answers a patient it does
not know (none such, or another care group's) exactly as one the caller has no care
relationship with, so a patient the caller may not see and one who does not exist get the
same error here, and the same row reason in an ingest or a batch of enrolments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from outcomes import errors, positions
from outcomes.base import (
    Deps,
    Page,
    care_group_of,
    organisation_of,
    refuse_insurer,
    valid_patient_id,
)
from outcomes.models import Enrolment, Measurement, MeasurementRevision, Programme, Sex
from outcomes.unit_of_work import UnitOfWork
from servicekit import dutch, names
from servicekit.auth import Principal
from servicekit.authorization import refusal, require
from servicekit.errors import InvalidArgument, Violations

MAX_ENROLMENT_BATCH = 1000


def permitted_holders(
    deps: Deps, principal: Principal, patient_id: str, holders: Sequence[str], purpose: str
) -> list[str]:
    """The record holders among ``holders`` whose records of the patient the caller may
    read, asking identity once per holder (an empty holder, none recorded, is never
    readable). When identity permits none, its refusal of the first is raised."""
    refuse_insurer(principal)
    named = [h for h in dict.fromkeys(holders) if h]
    asked = named or [organisation_of(principal)]
    decisions = [
        (h, deps.identity.authorize(principal, patient_id, "read", purpose, record_holder_id=h))
        for h in asked
    ]
    permitted = [h for h, d in decisions if d.permitted]
    if not permitted:
        raise refusal(decisions[0][1])
    return permitted if named else []


def require_permit(deps: Deps, principal: Principal, patient_id: str, purpose: str) -> None:
    """A create in the caller's own organisation's record of the patient."""
    require(deps.identity.authorize(principal, patient_id, "create", purpose))


# ------------------------------------------------------------------ enrolments


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
    now = deps.clock()
    reasons: dict[int, str] = {}
    for i, item in enumerate(items):
        v = Violations()
        validate_enrolment(item, now, v)
        if v:
            reasons[i] = v.items[0].reason
    valid_patients = [it.patient_id for i, it in enumerate(items) if i not in reasons]
    decisions = (
        deps.identity.batch_authorize(principal, valid_patients, "create", "enrolment")
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
                with uow.session.begin_nested():
                    enrolment = store_enrolment(uow, care_group_of(principal), item, now)
            except errors.EnrolmentExists as exc:
                results.append(EnrolmentResult(item.patient_id, None, exc.reason))
                continue
            results.append(EnrolmentResult(item.patient_id, enrolment, ""))
        uow.commit()
    return results


def list_enrolments(
    deps: Deps, principal: Principal, patient_id: str, position: dict[str, Any] | None, limit: int
) -> Page:
    """The patient's enrolments at the practices whose records the caller may read."""
    refuse_insurer(principal)
    after = positions.after_int(position, "id")
    care_group = care_group_of(principal)
    with deps.uow() as uow:
        holders = uow.repo.enrolment_practices(care_group, patient_id)
    permitted = permitted_holders(deps, principal, patient_id, holders, "enrolments")
    with deps.uow() as uow:
        items = uow.repo.enrolments(care_group, patient_id, permitted, after, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return Page(items, {"id": items[-1].id} if more else None)


# ------------------------------------------------------------------ measurements


@dataclass(frozen=True)
class MeasurementView:
    """A measurement with the values corrections replaced, oldest first."""

    measurement: Measurement
    revisions: Sequence[MeasurementRevision]


def list_measurements(
    deps: Deps, principal: Principal, patient_id: str, position: dict[str, Any] | None, limit: int
) -> Page:
    """The patient's measurements held by organisations whose records the caller may
    read (see the module's notes), with their corrections."""
    refuse_insurer(principal)
    after = positions.after_int(position, "id")
    care_group = care_group_of(principal)
    with deps.uow() as uow:
        holders = uow.repo.measurement_holders(care_group, patient_id)
    permitted = permitted_holders(deps, principal, patient_id, holders, "measurements")
    with deps.uow() as uow:
        items = uow.repo.measurements(care_group, patient_id, permitted, after, limit + 1)
        more = len(items) > limit
        items = items[:limit]
        revisions = uow.repo.revisions([m.id for m in items])
    views = [MeasurementView(m, revisions.get(m.id, [])) for m in items]
    return Page(views, {"id": items[-1].id} if more else None)

"""``Authorize`` and ``BatchAuthorize``: one decision and exactly one access-log entry per
patient asked about."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from identity import asking, errors, people
from identity.models import (
    Action,
    AppendedEntry,
    DataCategory,
)
from identity.policy import Answer, Basis, Decision
from identity.unit_of_work import UnitOfWork
from identity.use_cases.common import care_group_of, org_id_of
from identity.use_cases.decisions import (
    append_log,
    decide_and_append,
    log_entry,
    unknown_patient_answer,
)
from identity.use_cases.deps import Deps
from servicekit import metrics
from servicekit.auth import Principal
from servicekit.errors import Violations


@dataclass(frozen=True)
class AuthorizeInput:
    patient_id: str
    data_category: DataCategory | None
    action: Action | None
    purpose: str = ""
    emergency_reason: str = ""
    record_holder_id: str = ""
    subject: Principal | None = None
    referral_id: str = ""
    referral_target_id: str = ""
    access_point: str = ""


@dataclass(frozen=True)
class AuthorizeResult:
    answer: Answer
    sequence: int
    care_group_id: str


MAX_PURPOSE = 200
MAX_EMERGENCY_REASON = 1000


def _check_question(data: AuthorizeInput, v: Violations) -> None:
    """What Authorize and BatchAuthorize both require of a question (the access log holds a
    purpose of at most 200 characters and an emergency reason of at most 1000)."""
    if data.data_category is None:
        v.add("data_category", "is required", "DATA_CATEGORY_REQUIRED")
    if data.action is None:
        v.add("action", "is required", "ACTION_REQUIRED")
    if len(data.purpose) > MAX_PURPOSE:
        v.add("purpose", f"at most {MAX_PURPOSE} characters", "PURPOSE_TOO_LONG")
    if len(data.emergency_reason) > MAX_EMERGENCY_REASON:
        v.add(
            "emergency_reason",
            f"at most {MAX_EMERGENCY_REASON} characters",
            "EMERGENCY_REASON_TOO_LONG",
        )


def authorize(deps: Deps, caller: Principal, data: AuthorizeInput) -> AuthorizeResult:
    """Decides one access and writes exactly one access-log entry for it."""
    v = Violations()
    _check_question(data, v)
    v.raise_if_any()
    assert data.data_category is not None and data.action is not None
    _check_asker(deps, caller, data)
    data = _as_asked(caller, data)
    assert data.data_category is not None and data.action is not None
    subject = data.subject or caller
    access_point = data.access_point or caller.client_id
    now = deps.clock()
    # Reads (cached once warm), then one INSERT that is atomic on its own and checks the facts
    # the decision was taken on (see IdentityRepository.append_log).
    with deps.single_statement_uow() as uow:
        acting = people.act_for(uow, subject)
        answer, entry, care_group_id = _decide_one(
            uow, caller, subject, acting, data.patient_id, data, access_point, now
        )
        uow.commit()
    count_decision(answer)
    return AuthorizeResult(answer, entry.id, care_group_id)


def count_decision(answer: Answer) -> None:
    """Counts a logged decision in ``carenet.identity.authorize.decisions`` by decision and
    basis (servicekit.metrics); a denial on no basis counts under the basis ``none``."""
    metrics.domain().authorize_decision(answer.decision.value, answer.basis.value or "none")


def _decide_one(
    uow: UnitOfWork,
    caller: Principal,
    subject: Principal,
    acting: Principal | None,
    patient_id: str,
    data: AuthorizeInput,
    access_point: str,
    now: dt.datetime,
) -> tuple[Answer, AppendedEntry, str]:
    """One patient's decision and its log entry, and the care group it was logged under. A
    delegate naming nobody it may act for (``acting`` None), or a patient identity does not
    know in the subject's care group, is answered (and logged) like any other denial."""
    assert data.data_category is not None and data.action is not None
    found = uow.repo.patient_care_group(patient_id)
    own = care_group_of(subject)
    if acting is None or found is None or found != own:
        answer = (
            Answer(Decision.DENY, Basis.NONE, ON_BEHALF_OF_NOT_ALLOWED)
            if acting is None
            else unknown_patient_answer(
                uow,
                acting,
                patient_id,
                data.data_category,
                data.action,
                now,
                record_holder_id=data.record_holder_id,
                emergency_reason=data.emergency_reason,
            )
        )
        entry = append_log(
            uow,
            log_entry(
                event="AUTHORIZE",
                principal=acting or subject,
                patient_id=patient_id,
                care_group_id=own,
                data_category=data.data_category,
                action=data.action,
                answer=answer,
                now=now,
                purpose=data.purpose,
                emergency_reason=data.emergency_reason,
                access_point=access_point,
            ),
        )
        return answer, entry, own
    answer, entry = decide_and_append(
        uow,
        acting,
        patient_id,
        found,
        data.data_category,
        data.action,
        now,
        event="AUTHORIZE",
        purpose=data.purpose,
        emergency_reason=data.emergency_reason,
        access_point=access_point,
        record_holder_id=data.record_holder_id,
        referral_target_id=data.referral_target_id,
        refine=_holder_claim(uow, caller, data),
    )
    return answer, entry, found


ON_BEHALF_OF_NOT_ALLOWED = "ON_BEHALF_OF_NOT_ALLOWED"


def _check_asker(deps: Deps, caller: Principal, data: AuthorizeInput) -> None:
    """Only services ask for another subject, and only the referral service's account names
    a referral context: context that widens access is believed only from the service that
    owns the fact (anyone else is refused, never silently decided without it)."""
    if data.subject is not None and not caller.is_service:
        raise errors.RoleNotPermitted(
            "only services may ask on behalf of another subject", reason="SUBJECT_NOT_ALLOWED"
        )
    if (data.referral_id or data.referral_target_id) and not (
        caller.is_service and caller.client_id == deps.referral_service_client_id
    ):
        raise errors.ContextNotTrusted("only the referral service may name a referral context")


def _as_asked(caller: Principal, data: AuthorizeInput) -> AuthorizeInput:
    """What is believed of a question from a caller that is not a platform service (see
    identity.asking): its own client id as the access point, a purpose of the vocabulary
    or none."""
    if caller.is_service:
        return data
    return dataclasses.replace(
        data, access_point=caller.client_id, purpose=asking.purpose_of(data.purpose)
    )


def _holder_claim(
    uow: UnitOfWork, caller: Principal, data: AuthorizeInput
) -> Callable[[Answer], Answer] | None:
    """For a caller that is not a platform service: a PERMIT that rests on holding the
    record itself stands only for a category its type of organisation produces."""
    if caller.is_service or data.data_category is None:
        return None
    category = data.data_category
    own_id = org_id_of(caller)
    if data.record_holder_id and data.record_holder_id != own_id:
        return None
    own = uow.repo.organisation_ref(own_id) if own_id else None

    def refine(answer: Answer) -> Answer:
        if (
            answer.basis is Basis.CARE_RELATIONSHIP
            and own is not None
            and not asking.may_hold(own.type, category)
        ):
            return Answer(Decision.DENY, Basis.NONE, asking.RECORD_HOLDER_NOT_PRODUCER)
        return answer

    return refine


MAX_BATCH = 1000


@dataclass(frozen=True)
class PatientDecision:
    patient_id: str
    answer: Answer
    sequence: int


def batch_authorize(
    deps: Deps, caller: Principal, patient_ids: Sequence[str], data: AuthorizeInput
) -> list[PatientDecision]:
    """``authorize`` for many patients in one transaction: one decision and one log entry each.

    A patient identity does not know in the subject's care group is denied exactly like one
    without any care relationship. Referral context and emergency access do not apply to
    batches.
    """
    v = Violations()
    if not patient_ids:
        v.add("patients", "name at least one patient", "PATIENTS_REQUIRED")
    if len(patient_ids) > MAX_BATCH:
        v.add("patients", f"at most {MAX_BATCH} patients", "TOO_MANY_PATIENTS")
    _check_question(data, v)
    v.raise_if_any()
    assert data.data_category is not None and data.action is not None
    _check_asker(deps, caller, data)
    data = _as_asked(caller, data)
    assert data.data_category is not None and data.action is not None
    subject = data.subject or caller
    access_point = data.access_point or caller.client_id
    now = deps.clock()
    # Referral context and emergency access do not apply to batches.
    data = dataclasses.replace(data, emergency_reason="", referral_id="", referral_target_id="")
    results: list[PatientDecision] = []
    with deps.uow() as uow:
        acting = people.act_for(uow, subject)
        for patient_id in dict.fromkeys(patient_ids):
            answer, entry, _ = _decide_one(
                uow, caller, subject, acting, patient_id, data, access_point, now
            )
            results.append(PatientDecision(patient_id, answer, entry.id))
        uow.commit()
    for result in results:
        count_decision(result.answer)
    return results

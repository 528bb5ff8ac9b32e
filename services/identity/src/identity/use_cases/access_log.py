"""Reading and verifying the access log."""

from __future__ import annotations

from identity import access_log_verify, errors
from identity.access_log_verify import CheckpointNotVerified, Scope, Verification
from identity.models import (
    AccessLogEntry,
    Action,
    DataCategory,
)
from identity.policy import Answer, Basis, Decision
from identity.use_cases.common import VERIFY_ROLES, care_group_of
from identity.use_cases.decisions import append_log, log_entry
from identity.use_cases.deps import Deps
from identity.use_cases.patients import UNNAMED_PATIENT
from servicekit import metrics
from servicekit.auth import Principal
from servicekit.paging import INT64_MAX, Page, PageRequest

# The position a newest-first listing starts below: above every entry id (a BIGINT).
NEWEST = INT64_MAX


def list_access_log(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    page: PageRequest,
    *,
    emergency_only: bool = False,
    newest_first: bool = False,
) -> Page[AccessLogEntry]:
    """A patient lists their own entries; an auditor any in the care group. Reading is logged.
    ``emergency_only``: only the flagged emergency accesses (the privacy officer's review).
    ``newest_first``: the latest entries first (a page of them is the latest whatever came
    before); pages continue below the last entry returned, so entries appended meanwhile
    never shift a later page.

    Whether the patient exists plays no part: a reader gets the entries of the caller's care
    group about that patient (none for a patient identity does not know there), anyone else
    is refused NOT_LOG_READER either way."""
    now = deps.clock()
    care_group_id = care_group_of(principal)
    with deps.uow() as uow:
        if patient_id:
            allowed = (principal.is_patient and principal.patient == f"patients/{patient_id}") or (
                "auditor" in principal.roles
            )
        else:
            allowed = "auditor" in principal.roles
        answer = (
            Answer(
                Decision.PERMIT, Basis.SELF if principal.is_patient else Basis.AUDIT, "LOG_READER"
            )
            if allowed
            else Answer(Decision.DENY, Basis.NONE, "NOT_LOG_READER")
        )
        append_log(
            uow,
            log_entry(
                event="LIST_ACCESS_LOG",
                principal=principal,
                patient_id=patient_id or UNNAMED_PATIENT,
                care_group_id=care_group_id,
                data_category=DataCategory.ACCESS_LOG,
                action=Action.READ,
                answer=answer,
                now=now,
            ),
        )
        uow.commit()
        if not allowed:
            raise errors.AccessDenied("access denied", reason=answer.reason)
        items = uow.repo.access_log(
            patient_id=patient_id or None,
            care_group_id=care_group_id,
            after=page.after(NEWEST if newest_first else 0),
            limit=page.limit,
            emergency_only=emergency_only,
            newest_first=newest_first,
        )
        return Page.after_key(items, page, lambda item: item.id)


def verify_access_log(deps: Deps, principal: Principal, scope: Scope | None = None) -> Verification:
    """Checks the stripes' keyed chains and every published checkpoint, as far as ``scope``
    says (default: the whole log; see identity.access_log_verify). A range from a
    checkpoint the store does not hold with a valid signature is refused."""
    if not principal.roles & VERIFY_ROLES:
        raise errors.RoleNotPermitted("only auditors may verify the access log")
    with deps.uow() as uow:
        try:
            result = access_log_verify.verify(uow.repo, deps.log_trust(), scope)
        except CheckpointNotVerified as exc:
            raise errors.InvalidArgument.single(
                "since_checkpoint",
                "not a checkpoint in the checkpoint store whose signature verifies",
                "CHECKPOINT_NOT_VERIFIED",
            ) from exc
    count_verification(result)
    return result


def count_verification(result: Verification) -> None:
    """Counts a verification run in ``carenet.identity.access_log.verifications``
    (servicekit.metrics): once as ``ok`` when the log is intact, else once for each distinct
    problem reason found (the alert CarenetAccessLogVerificationFailed reads these)."""
    counters = metrics.domain()
    if result.intact:
        counters.access_log_verified("ok")
        return
    for reason in sorted({problem.reason for problem in result.problems}):
        counters.access_log_verified(reason)

"""Asking identity about one access to a patient's care plan.

Every RPC that touches a plan asks identity's ``Authorize`` exactly once, and identity writes
exactly one NEN 7513 access-log entry for it. The question is the one the access makes: it
is derived from the plan as read by the same call (its record holder, and whether the caller
is an informal carer the plan's patient mandated), so the entry's subject, purpose, data
category, action and record holder are those of the access. Nothing is asked before the plan
is read, and identity is never asked a second time about the same access.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from careplan import errors
from careplan.models import PlanView
from careplan.policy import Role, role_on
from servicekit import admission
from servicekit.auth import Principal
from servicekit.identity_client import Access, AccessDecision, AccessQuestion, IdentityClient

log = logging.getLogger("careplan.access")

PURPOSE = "care-plan"
CARER_PURPOSE = "informal-carer-mandate"
REFUSED = "access to the care plan was refused"


@dataclass(frozen=True)
class Question:
    """What identity is asked about an access to a plan, and the caller's role on it."""

    question: AccessQuestion
    role: Role


def question_for(
    principal: Principal,
    patient_id: str,
    view: PlanView | None,
    access: Access,
    missing_holder: str = "",
) -> Question:
    """The question an access to ``view`` makes; a missing plan (``view`` None) is asked
    about as held by ``missing_holder``, the practice that would hold it. An informal
    carer is asked about under the patient's mandate: as the patient's delegate, with the
    purpose ``informal-carer-mandate``, so the entry shows the carer's user id and purpose."""
    holder = view.record_holder_id if view is not None else missing_holder
    role = role_on(principal, patient_id, holder, view.content if view else None)
    if role is not Role.INFORMAL_CARER:
        return Question(AccessQuestion(principal, patient_id, access, holder, PURPOSE), role)
    delegate = Principal(
        subject=principal.subject,
        client_id=principal.client_id,
        organisation="",
        care_group=principal.care_group,
        roles=frozenset({"patient"}),
        patient=f"patients/{patient_id}",
        on_behalf_of=principal.on_behalf_of,
    )
    return Question(AccessQuestion(delegate, patient_id, access, holder, CARER_PURPOSE), role)


def authorize(
    identity: IdentityClient,
    principal: Principal,
    patient_id: str,
    view: PlanView | None,
    access: Access,
    missing_holder: str = "",
) -> Role:
    """Asks identity once about the access to ``view`` (which logs it); the caller's role on
    the plan when permitted, PERMISSION_DENIED with identity's reason otherwise. A missing
    plan is asked about as held by ``missing_holder`` and is for the caller to report, after
    this permit."""
    q = question_for(principal, patient_id, view, access, missing_holder)
    ask(identity, q)
    return q.role


def ask(identity: IdentityClient, q: Question) -> None:
    """identity's permit for ``q`` (servicekit.admission: asked once, logged, refused with
    identity's reason and careplan's one fixed message).

    careplan's own log line, ``care_plan_access`` (refusals at INFO, permitted accesses at
    DEBUG), carries the kind of access, the role, the decision and identity's reason only. No
    patient, user or organisation: who accessed whose plan is personal data, recorded only in
    identity's protected access log (the NEN 7513 entry of every access)."""
    admission.decide(
        identity,
        q.question,
        refuse=_refused,
        event="care_plan_access",
        log_fields={"role": q.role.value},
        logger=log,
    )


def _refused(decision: AccessDecision) -> Exception:
    return errors.AccessDenied(REFUSED, reason=decision.reason)

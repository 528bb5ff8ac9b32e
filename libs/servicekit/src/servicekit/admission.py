"""The one step before a use case touches a patient's data: decide, log, refuse, then
"found or NotFound".

``admit(identity, question, found, missing=...)``:

1. asks identity the question, once (identity decides and writes the access-log entry);
2. logs one structured line for operations: refusals at INFO, permits at DEBUG, with the
   kind of access, the decision, identity's reason and whatever ``log_fields`` the service
   adds (never a patient, user or organisation: who accessed whose data is recorded only in
   identity's protected access log);
3. refuses what identity did not permit (PERMISSION_DENIED with identity's reason,
   :func:`servicekit.authorization.refusal`, or the service's ``refuse``);
4. only then answers ``missing`` (NOT_FOUND) when the data the question was about does not
   exist, so that a caller who may not see the patient cannot tell whether it exists.

Ask what refuses a call whatever the patient (the request's shape, the caller's role) before
this step: identity must never log a permit for an access that could not happen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

from servicekit.authorization import refusal
from servicekit.identity_client import AccessDecision, AccessQuestion, IdentityClient

T = TypeVar("T")

log = logging.getLogger("servicekit.admission")

Refuse = Callable[[AccessDecision], Exception]


def decide(
    identity: IdentityClient,
    question: AccessQuestion,
    *,
    refuse: Refuse = refusal,
    event: str = "patient_data_access",
    log_fields: Mapping[str, str] | None = None,
    logger: logging.Logger = log,
) -> AccessDecision:
    """Steps 1-3: identity's permit, or ``refuse(decision)`` raised."""
    decision = identity.authorize(question)
    _log(logger, event, question, decision, log_fields)
    if not decision.permitted:
        raise refuse(decision)
    return decision


def admit(
    identity: IdentityClient,
    question: AccessQuestion,
    found: T | None,
    *,
    missing: Callable[[], Exception],
    refuse: Refuse = refusal,
    event: str = "patient_data_access",
    log_fields: Mapping[str, str] | None = None,
    logger: logging.Logger = log,
) -> T:
    """Steps 1-4: ``found`` once identity permitted; ``missing()`` raised when it is None
    (after the permit); ``refuse(decision)`` raised on a refusal, whether or not it exists."""
    decide(identity, question, refuse=refuse, event=event, log_fields=log_fields, logger=logger)
    if found is None:
        raise missing()
    return found


def _log(
    logger: logging.Logger,
    event: str,
    question: AccessQuestion,
    decision: AccessDecision,
    fields: Mapping[str, str] | None,
) -> None:
    level = logging.DEBUG if decision.permitted else logging.INFO
    if not logger.isEnabledFor(level):
        return
    logger.log(
        level,
        event,
        extra={
            **(fields or {}),
            "access": question.access.value,
            "decision": "permit" if decision.permitted else "deny",
            "reason": decision.reason,
        },
    )

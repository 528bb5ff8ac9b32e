"""Asking identity whether a subject may act on a patient's data.

Every service reaches identity's ``Authorize`` and ``BatchAuthorize`` through
:class:`IdentityAuthorizer`: the call carries the service's own token (on the channel) and
the end user as ``subject`` (the system that called, and the person it acts for when it is
a delegate), has a deadline, and fails closed: anything but an answer is
:class:`IdentityUnavailable` (UNAVAILABLE), never a permit. identity logs every decision.

A refusal reaches the caller as :func:`refusal` of the decision: PERMISSION_DENIED with
identity's reason and a message fixed per reason, naming no patient. identity itself answers
a patient it does not know (none such, another care group) exactly like a patient without a
care relationship, so that an answer never tells whether a patient exists.

What identity answers other than a decision:

- PERMISSION_DENIED (identity refused to decide for this asker, e.g. ``CONTEXT_NOT_TRUSTED``
  for a referral context from a service other than referral, ``ON_BEHALF_OF_NOT_ALLOWED``):
  a refusal with identity's reason when it is one of the known ones, else
  ``IDENTITY_REFUSED``;
- INVALID_ARGUMENT (identity cannot pose the question as asked, e.g.
  ``UNKNOWN_RECORD_HOLDER``): a question the service built and identity could not read, so a
  fault of the service (or of its data), not of its caller. It stays a fail-closed refusal,
  ``NO_CARE_RELATIONSHIP``, the answer for a patient the caller may not see: an answer of its
  own could tell patients apart by the data they have (a record holder that only exists for
  a patient with measurements), and the caller could not act on it. It is logged at WARNING
  (``authorize_question_invalid``, with identity's reason and the names of the fields it
  objected to, never a value or a patient) so that operators see the fault;
- anything else (UNAVAILABLE once the retries are spent, a deadline, an unexpected code):
  :class:`IdentityUnavailable`, UNAVAILABLE, never a permit.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from servicekit.auth import Principal
from servicekit.channels import with_retries
from servicekit.errors import PermissionDenied, Unavailable

MAX_BATCH = 1000

log = logging.getLogger("servicekit.authorization")


class IdentityUnavailable(Unavailable):
    default_reason = "IDENTITY_UNAVAILABLE"


class Access(enum.StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"


class Category(enum.StrEnum):
    REFERRAL = "referral"
    CARE_PLAN = "care-plan"
    MEASUREMENTS = "measurements"


_ACCESS = {
    Access.READ: pb.ACTION_READ,
    Access.CREATE: pb.ACTION_CREATE,
    Access.UPDATE: pb.ACTION_UPDATE,
}
_CATEGORY = {
    Category.REFERRAL: pb.DATA_CATEGORY_REFERRAL,
    Category.CARE_PLAN: pb.DATA_CATEGORY_CARE_PLAN,
    Category.MEASUREMENTS: pb.DATA_CATEGORY_MEASUREMENTS,
}
_BASES = {v: k.removeprefix("BASIS_").lower().replace("_", "-") for k, v in pb.Basis.items()}


NO_CARE_RELATIONSHIP = "NO_CARE_RELATIONSHIP"
IDENTITY_REFUSED = "IDENTITY_REFUSED"


@dataclass(frozen=True)
class Decision:
    """identity's answer (a patient identity does not know is a refusal like any other)."""

    permitted: bool
    reason: str
    basis: str = ""


class AccessRefused(PermissionDenied):
    """identity refused the access (see :func:`refusal`)."""

    default_reason = "ACCESS_DENIED"


# One fixed message per reason: nothing in it depends on the patient or the request.
_REFUSAL_MESSAGES = {
    NO_CARE_RELATIONSHIP: "no care relationship gives access to this patient's data",
    "NO_CONSENT": "the patient's consent does not cover this access",
    "NOT_OWN_DATA": "a patient may access only their own data",
    "INSURER_NO_PATIENT_DATA": "insurers have no access to patient data",
    "ROLE_NOT_PERMITTED": "the caller's role gives no access to this data",
    "UNKNOWN_ORGANISATION": "the caller's organisation is not known in its care group",
    "RECORD_HOLDER_REQUIRED": "the organisation holding the data must be named",
    "EMERGENCY_NOT_PERMITTED": "emergency access is open only to clinicians",
    "EMERGENCY_REASON_INSUFFICIENT": "emergency access needs a real reason",
    "ON_BEHALF_OF_NOT_ALLOWED": "the caller may not act for the person it names",
    "NOT_RELATIONSHIP_MANAGER": "the caller may not manage this patient's care relationships",
    "CONTEXT_NOT_TRUSTED": "identity does not accept this context from this service",
    "SUBJECT_NOT_ALLOWED": "identity does not accept a subject from this caller",
    "NOT_LOG_READER": "the caller may not read this access log",
    IDENTITY_REFUSED: "identity refused to decide for this caller",
    "NO_DECISION": "identity gave no decision for this patient",
}
_GENERIC_REFUSAL = "access to this patient's data was refused"


def refusal(decision: Decision) -> AccessRefused:
    """The error for a refused decision: PERMISSION_DENIED, identity's reason (when it is an
    UPPER_SNAKE word, else ``ACCESS_DENIED``) and that reason's fixed message."""
    reason = decision.reason if _is_reason(decision.reason) else AccessRefused.default_reason
    return AccessRefused(_REFUSAL_MESSAGES.get(reason, _GENERIC_REFUSAL), reason=reason)


def require(decision: Decision) -> None:
    """Raises :func:`refusal` unless the decision permits."""
    if not decision.permitted:
        raise refusal(decision)


def _is_reason(reason: str) -> bool:
    return 0 < len(reason) <= 64 and all(c.isupper() or c.isdigit() or c == "_" for c in reason)


@dataclass(frozen=True)
class ReferralContext:
    """Names the referral a request is about, so identity can apply the Mitz referral
    exception for its target."""

    referral: str
    target_organisation_id: str
    referrer_organisation_id: str


def subject_of(principal: Principal) -> pb.Subject:
    """The subject of a question: for a call acting for a person, the delegate with its
    token's roles and the person named, which identity resolves again from its own
    directory (never the roles the service resolved)."""
    return pb.Subject(
        user=principal.subject,
        organisation=principal.organisation,
        care_group=principal.care_group,
        roles=sorted(principal.token_roles),
        patient=principal.patient,
        on_behalf_of=principal.on_behalf_of,
        client_id=principal.client_id,
    )


def principal_of(subject: pb.Subject) -> Principal:
    """The principal a question's subject names (:func:`subject_of` read back): identity's
    reading of who asks, with the roles the subject's token carries."""
    return Principal(
        subject=subject.user,
        client_id=subject.client_id,
        organisation=subject.organisation,
        care_group=subject.care_group,
        roles=frozenset(subject.roles),
        patient=subject.patient,
        on_behalf_of=subject.on_behalf_of,
    )


class QuestionOptions(TypedDict, total=False):
    """What an Authorize question may add to subject, patient, category and access."""

    record_holder_id: str  # the organisation holding the data, if not the subject's own
    referral: ReferralContext | None  # the referral the access is about
    purpose: str


class IdentityAuthorizer:
    def __init__(self, channel: grpc.Channel, *, deadline_seconds: float = 5.0) -> None:
        self._stub = rpc_grpc.IdentityServiceStub(channel)
        self._deadline = deadline_seconds

    def authorize(
        self,
        subject: Principal,
        patient_id: str,
        category: Category,
        access: Access,
        **options: Unpack[QuestionOptions],
    ) -> Decision:
        request = _authorize_request(subject, patient_id, category, access, **options)
        try:
            reply = with_retries(
                lambda remaining: self._stub.Authorize(request, timeout=remaining), self._deadline
            )
        except grpc.RpcError as error:
            return _refusal(error)
        return _decision(reply)

    def _batch_authorize_once(
        self, request: rpc.BatchAuthorizeRequest, timeout: float
    ) -> rpc.BatchAuthorizeResponse:
        return self._stub.BatchAuthorize(request, timeout=timeout)

    def batch_authorize(
        self,
        subject: Principal,
        patient_ids: Sequence[str],
        category: Category,
        access: Access,
        *,
        purpose: str = "",
        record_holder_id: str = "",
    ) -> dict[str, Decision]:
        """One decision (and one access-log entry) per distinct patient, about the records
        ``record_holder_id`` holds (empty: the subject's own organisation's); a patient
        identity gave no answer for is refused."""
        decisions: dict[str, Decision] = {}
        unique = list(dict.fromkeys(patient_ids))
        for start in range(0, len(unique), MAX_BATCH):
            request = rpc.BatchAuthorizeRequest(
                patients=[f"patients/{p}" for p in unique[start : start + MAX_BATCH]],
                data_category=_CATEGORY[category],
                action=_ACCESS[access],
                purpose=purpose,
                record_holder=f"organisations/{record_holder_id}" if record_holder_id else "",
                subject=subject_of(subject),
                access_point=subject.client_id,
            )
            try:
                reply = with_retries(
                    functools.partial(self._batch_authorize_once, request), self._deadline * 4
                )
            except grpc.RpcError as error:
                # Every patient of the chunk refused alike (the same rule as one question).
                refused = _refusal(error)
                for p in unique[start : start + MAX_BATCH]:
                    decisions[p] = refused
                continue
            for d in reply.decisions:
                decisions[d.patient.removeprefix("patients/")] = Decision(
                    d.decision == pb.DECISION_PERMIT, d.reason, _BASES.get(d.basis, "")
                )
        for p in unique:
            decisions.setdefault(p, Decision(False, "NO_DECISION"))
        return decisions


def _authorize_request(
    subject: Principal,
    patient_id: str,
    category: Category,
    access: Access,
    **options: Unpack[QuestionOptions],
) -> rpc.AuthorizeRequest:
    record_holder_id = options.get("record_holder_id", "")
    referral = options.get("referral")
    request = rpc.AuthorizeRequest(
        patient=f"patients/{patient_id}",
        data_category=_CATEGORY[category],
        action=_ACCESS[access],
        purpose=options.get("purpose", ""),
        record_holder=f"organisations/{record_holder_id}" if record_holder_id else "",
        subject=subject_of(subject),
        access_point=subject.client_id,
    )
    if referral is not None:
        request.referral_context.CopyFrom(
            rpc.ReferralContext(
                referral=referral.referral,
                target_organisation=f"organisations/{referral.target_organisation_id}",
                referrer_organisation=f"organisations/{referral.referrer_organisation_id}",
            )
        )
    return request


def _decision(reply: rpc.AuthorizeResponse) -> Decision:
    return Decision(reply.decision == pb.DECISION_PERMIT, reply.reason, _BASES.get(reply.basis, ""))


def _refusal(error: grpc.RpcError) -> Decision:
    """The decision for an error answer of identity (see the module's docstring)."""
    code = getattr(error, "code", lambda: None)()
    if code == grpc.StatusCode.PERMISSION_DENIED:
        reason, _fields = _error_details(error)
        return Decision(False, reason if reason in _REFUSAL_MESSAGES else IDENTITY_REFUSED)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        reason, fields = _error_details(error)
        log.warning(
            "authorize_question_invalid",
            extra={"identity_reason": reason if _is_reason(reason) else "", "fields": fields},
        )
        return Decision(False, NO_CARE_RELATIONSHIP)
    raise IdentityUnavailable("identity could not decide; access refused") from error


def _error_details(error: grpc.RpcError) -> tuple[str, list[str]]:
    """identity's ErrorInfo reason and the field names of its BadRequest, if it sent them."""
    try:
        status = rpc_status.from_call(error)
    except (AttributeError, ValueError):
        return "", []
    reason, fields = "", []
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason = info.reason
        elif detail.Unpack(bad):
            fields = [v.field[:100] for v in bad.field_violations[:10]]
    return reason, fields

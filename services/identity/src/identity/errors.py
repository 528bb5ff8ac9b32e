"""Domain errors of the identity service. Messages never carry a BSN."""

from __future__ import annotations

# The header x-carenet-on-behalf-of names no active person of the delegate's organisation.
from servicekit.auth import OnBehalfOfNotAllowed
from servicekit.errors import (
    AlreadyExists,
    EtagMismatch,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RoleNotPermitted,
)

DOMAIN = "identity.carenet"


class OrganisationNotFound(NotFound):
    default_reason = "ORGANISATION_NOT_FOUND"


class OrganisationExists(AlreadyExists):
    default_reason = "ORGANISATION_EXISTS"


class PatientNotFound(NotFound):
    default_reason = "PATIENT_NOT_FOUND"


class PatientIdTaken(AlreadyExists):
    default_reason = "PATIENT_ID_TAKEN"


class CareRelationshipNotFound(NotFound):
    default_reason = "CARE_RELATIONSHIP_NOT_FOUND"


class CareRelationshipExists(AlreadyExists):
    """An open relationship of the same kind between the patient and the organisation
    exists; its name is in the ErrorInfo metadata (``care_relationship``)."""

    default_reason = "CARE_RELATIONSHIP_EXISTS"


class ConsentNotFound(NotFound):
    default_reason = "CONSENT_NOT_FOUND"


class ConsentAlreadyWithdrawn(FailedPrecondition):
    default_reason = "CONSENT_ALREADY_WITHDRAWN"


class AccessDenied(PermissionDenied):
    """Authorization refused; the reason is the decision table's reason code."""


class ProvisioningUnavailable(FailedPrecondition):
    default_reason = "PROVISIONING_NOT_CONFIGURED"


class ContextNotTrusted(PermissionDenied):
    """A referral context from a caller other than the referral service."""

    default_reason = "CONTEXT_NOT_TRUSTED"


__all__ = [
    "DOMAIN",
    "AccessDenied",
    "CareRelationshipExists",
    "CareRelationshipNotFound",
    "ConsentAlreadyWithdrawn",
    "ConsentNotFound",
    "ContextNotTrusted",
    "EtagMismatch",
    "InvalidArgument",
    "OnBehalfOfNotAllowed",
    "OrganisationExists",
    "OrganisationNotFound",
    "PatientIdTaken",
    "PatientNotFound",
    "ProvisioningUnavailable",
    "RoleNotPermitted",
]

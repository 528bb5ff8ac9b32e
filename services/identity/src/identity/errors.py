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


class OrganisationNotFound(NotFound, reason="ORGANISATION_NOT_FOUND"): ...


class OrganisationExists(AlreadyExists, reason="ORGANISATION_EXISTS"): ...


class PatientNotFound(NotFound, reason="PATIENT_NOT_FOUND"): ...


class PatientIdTaken(AlreadyExists, reason="PATIENT_ID_TAKEN"): ...


class CareRelationshipNotFound(NotFound, reason="CARE_RELATIONSHIP_NOT_FOUND"): ...


class CareRelationshipExists(AlreadyExists, reason="CARE_RELATIONSHIP_EXISTS"):
    """An open relationship of the same kind between the patient and the organisation
    exists; its name is in the ErrorInfo metadata (``care_relationship``)."""


class ConsentNotFound(NotFound, reason="CONSENT_NOT_FOUND"): ...


class ConsentAlreadyWithdrawn(FailedPrecondition, reason="CONSENT_ALREADY_WITHDRAWN"): ...


class AccessDenied(PermissionDenied):
    """Authorization refused; the reason is the decision table's reason code."""


class ProvisioningUnavailable(FailedPrecondition, reason="PROVISIONING_NOT_CONFIGURED"): ...


class ContextNotTrusted(PermissionDenied, reason="CONTEXT_NOT_TRUSTED"):
    """A referral context from a caller other than the referral service."""


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

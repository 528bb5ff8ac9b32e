"""Domain errors of the identity service. Messages never carry a BSN."""

from __future__ import annotations

from servicekit.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
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


class ConsentNotFound(NotFound):
    default_reason = "CONSENT_NOT_FOUND"


class ConsentAlreadyWithdrawn(FailedPrecondition):
    default_reason = "CONSENT_ALREADY_WITHDRAWN"


class AccessDenied(PermissionDenied):
    """Authorization refused; the reason is the decision table's reason code."""


class EtagMismatch(Aborted):
    default_reason = "ETAG_MISMATCH"


class RoleNotPermitted(PermissionDenied):
    default_reason = "ROLE_NOT_PERMITTED"


class ProvisioningUnavailable(FailedPrecondition):
    default_reason = "PROVISIONING_NOT_CONFIGURED"


__all__ = [
    "DOMAIN",
    "AccessDenied",
    "CareRelationshipNotFound",
    "ConsentAlreadyWithdrawn",
    "ConsentNotFound",
    "EtagMismatch",
    "InvalidArgument",
    "OrganisationExists",
    "OrganisationNotFound",
    "PatientIdTaken",
    "PatientNotFound",
    "ProvisioningUnavailable",
    "RoleNotPermitted",
]

"""Domain errors of the outcomes service. Messages never carry identifying data."""

from __future__ import annotations

from servicekit.authorization import IdentityUnavailable
from servicekit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RoleNotPermitted,
)

DOMAIN = "outcomes.carenet"


class EnrolmentNotFound(NotFound):
    default_reason = "ENROLMENT_NOT_FOUND"


class EnrolmentExists(AlreadyExists):
    default_reason = "ENROLMENT_EXISTS"


class IndicatorNotFound(NotFound):
    default_reason = "INDICATOR_NOT_FOUND"


class ContractNotFound(NotFound):
    default_reason = "CONTRACT_NOT_FOUND"


class ContractExists(AlreadyExists):
    default_reason = "CONTRACT_EXISTS"


class ReportNotFound(NotFound):
    default_reason = "REPORT_NOT_FOUND"


class ReportRequired(FailedPrecondition):
    default_reason = "REPORT_REQUIRED"


class CostsRequired(FailedPrecondition):
    default_reason = "COSTS_REQUIRED"


class IndicatorVersionChanged(FailedPrecondition):
    """A definition file changed the content of an already loaded code+version."""

    default_reason = "INDICATOR_VERSION_CHANGED"


class InsurerNoPatientData(PermissionDenied):
    default_reason = "INSURER_NO_PATIENT_DATA"


__all__ = [
    "DOMAIN",
    "ContractExists",
    "ContractNotFound",
    "CostsRequired",
    "EnrolmentExists",
    "EnrolmentNotFound",
    "IdentityUnavailable",
    "IndicatorNotFound",
    "IndicatorVersionChanged",
    "InsurerNoPatientData",
    "InvalidArgument",
    "ReportNotFound",
    "ReportRequired",
    "RoleNotPermitted",
]

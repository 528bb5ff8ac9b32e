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
    Unavailable,
)

DOMAIN = "outcomes.carenet"


class EnrolmentNotFound(NotFound, reason="ENROLMENT_NOT_FOUND"): ...


class EnrolmentExists(AlreadyExists, reason="ENROLMENT_EXISTS"): ...


class IndicatorNotFound(NotFound, reason="INDICATOR_NOT_FOUND"): ...


class ContractNotFound(NotFound, reason="CONTRACT_NOT_FOUND"): ...


class ContractExists(AlreadyExists, reason="CONTRACT_EXISTS"): ...


class ReportNotFound(NotFound, reason="REPORT_NOT_FOUND"): ...


class ReportRequired(FailedPrecondition, reason="REPORT_REQUIRED"): ...


class CostsRequired(FailedPrecondition, reason="COSTS_REQUIRED"): ...


class IndicatorVersionChanged(FailedPrecondition, reason="INDICATOR_VERSION_CHANGED"):
    """A definition file changed the content of an already loaded code+version."""


class InsurerNoPatientData(PermissionDenied, reason="INSURER_NO_PATIENT_DATA"): ...


class IngestBusy(Unavailable, reason="INGEST_BUSY"):
    """Another ingest of the same record holder held its turn longer than the ingest lock
    timeout: the chunk wrote nothing and asked identity nothing; sending the batch again
    is safe (committed rows come back as duplicates)."""


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
    "IngestBusy",
    "InsurerNoPatientData",
    "InvalidArgument",
    "ReportNotFound",
    "ReportRequired",
    "RoleNotPermitted",
]

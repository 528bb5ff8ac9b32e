"""Domain errors of the careplan service. Messages never carry identifying or health data."""

from __future__ import annotations

from servicekit.authorization import AccessRefused
from servicekit.errors import (
    AlreadyExists,
    EtagMismatch,
    NotFound,
    PermissionDenied,
    RoleNotPermitted,
)

DOMAIN = "careplan.carenet"

# identity's Authorize said no; the reason is identity's reason code.
AccessDenied = AccessRefused


class CarePlanNotFound(NotFound, reason="CARE_PLAN_NOT_FOUND"): ...


class RevisionNotFound(NotFound, reason="REVISION_NOT_FOUND"): ...


class CarePlanExists(AlreadyExists, reason="CARE_PLAN_EXISTS"): ...


class FieldGroupNotWritable(PermissionDenied, reason="FIELD_GROUP_NOT_WRITABLE"):
    """The caller's role may not write a field group (see careplan.policy)."""


__all__ = [
    "DOMAIN",
    "AccessDenied",
    "CarePlanExists",
    "CarePlanNotFound",
    "EtagMismatch",
    "FieldGroupNotWritable",
    "ItemExists",
    "ItemNotFound",
    "NotCoordinatingPractice",
    "RevisionNotFound",
    "RoleNotPermitted",
]


class NotCoordinatingPractice(PermissionDenied, reason="NOT_COORDINATING_PRACTICE"):
    """Only the patient's coordinating practice (or the patient) creates the care plan."""


class ItemNotFound(NotFound):
    """A goal, action or evaluation moment the plan does not hold (reason per kind, e.g.
    ``GOAL_NOT_FOUND``, with the item's id in the metadata)."""


class ItemExists(AlreadyExists):
    """A new item with an id the plan already holds (e.g. ``GOAL_EXISTS``)."""

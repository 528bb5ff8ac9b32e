"""Domain errors of the referral service. Messages never carry identifying or health data."""

from __future__ import annotations

from servicekit import errors as kit
from servicekit.authorization import AccessRefused, IdentityUnavailable
from servicekit.errors import (
    AlreadyExists,
    EtagMismatch,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RoleNotPermitted,
)

DOMAIN = "referral.carenet"

# An INVALID_ARGUMENT names at most 10 field violations and says how many more there were:
# servicekit.errors.to_status keeps every service's status within what gRPC carries.
Violations = kit.Violations


class OfferNotFound(NotFound, reason="OFFER_NOT_FOUND"): ...


class OfferExists(AlreadyExists, reason="OFFER_EXISTS"): ...


class NotOfferOwner(PermissionDenied, reason="NOT_OFFER_OWNER"): ...


class NotCurator(PermissionDenied, reason="NOT_CURATOR"): ...


class InvalidOfferTransition(FailedPrecondition, reason="INVALID_OFFER_TRANSITION"): ...


class OfferNotListed(FailedPrecondition, reason="OFFER_NOT_LISTED"): ...


class ReferralNotFound(NotFound, reason="REFERRAL_NOT_FOUND"): ...


class DuplicateReferral(AlreadyExists, reason="DUPLICATE_OPEN_REFERRAL"): ...


class InvalidTransition(FailedPrecondition, reason="INVALID_TRANSITION"): ...


class NotReferralParty(PermissionDenied, reason="NOT_A_PARTY_TO_REFERRAL"):
    """The caller is neither the referrer, the target nor the patient of the referral."""


class WrongParty(PermissionDenied, reason="TRANSITION_NOT_ALLOWED_FOR_PARTY"):
    """The transition is allowed from this state, but by the other party."""


__all__ = [
    "DOMAIN",
    "AccessRefused",
    "DuplicateReferral",
    "EtagMismatch",
    "IdentityUnavailable",
    "InvalidArgument",
    "InvalidOfferTransition",
    "InvalidTransition",
    "NotCurator",
    "NotOfferOwner",
    "NotReferralParty",
    "OfferExists",
    "OfferNotFound",
    "OfferNotListed",
    "ReferralNotFound",
    "RoleNotPermitted",
    "Violations",
    "WrongParty",
]


class OfferNotFoundField(OfferNotFound):
    """An unknown offer named in a request body: NOT_FOUND with the field violation."""

    def field_violations(self) -> list[FieldViolation]:
        return [FieldViolation("referral.offer", "no such offer", self.reason)]

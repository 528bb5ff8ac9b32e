"""Domain errors and their mapping to ``google.rpc.Status`` (AIP-193).

Domain code raises a :class:`DomainError` subclass. The error interceptor turns it into a
status with exactly one ``ErrorInfo`` (the error's ``reason`` and the service's domain), and
for INVALID_ARGUMENT a ``BadRequest`` listing the field violations. Messages are for
developers: they never carry a BSN or other identifying data.

A status travels in the call's trailers, which gRPC clients refuse above 8-16 KiB (the
caller then sees RESOURCE_EXHAUSTED with no readable status). :func:`to_status` keeps every
status well below that, for every service: at most MAX_FIELD_VIOLATIONS field violations
(the first found; the message says how many more there were), each field path and
description, and the message, cut to a bounded length.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

MAX_FIELD_VIOLATIONS = 10
MAX_MESSAGE_CHARS = 1000
MAX_FIELD_CHARS = 200
MAX_DESCRIPTION_CHARS = 300


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str
    reason: str = ""


class DomainError(Exception):
    """A failure the caller can act on. Subclasses fix the gRPC code; a service's error
    names its reason where it is declared, ``class OfferNotFound(NotFound,
    reason="OFFER_NOT_FOUND"): ...`` (the same as setting ``default_reason``)."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason: str = "INTERNAL"

    def __init_subclass__(cls, *, reason: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if reason:
            cls.default_reason = reason

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})

    def field_violations(self) -> list[FieldViolation]:
        return []


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Iterable[FieldViolation],
        *,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        self.violations = list(violations)
        first = self.violations[0] if self.violations else None
        reason = reason or (first.reason if first and first.reason else None)
        text = message or "; ".join(
            f"{v.field}: {v.description}" for v in self.violations[:MAX_FIELD_VIOLATIONS]
        )
        super().__init__(text or "invalid argument", reason=reason)

    def field_violations(self) -> list[FieldViolation]:
        return self.violations

    @classmethod
    def single(cls, field: str, description: str, reason: str) -> InvalidArgument:
        return cls([FieldViolation(field, description, reason)], reason=reason)


class Violations:
    """Collects field violations and raises them together."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str, reason: str = "INVALID_ARGUMENT") -> None:
        self.items.append(FieldViolation(field, description, reason))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class RoleNotPermitted(PermissionDenied):
    """The caller's role may not make this call (whatever the patient or resource)."""

    default_reason = "ROLE_NOT_PERMITTED"


class EtagMismatch(Aborted):
    """The resource changed since the caller read it (AIP-154 etag): read it again."""

    default_reason = "ETAG_MISMATCH"


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_status(error: DomainError, domain: str) -> status_pb2.Status:
    """The ``google.rpc.Status`` for a domain error: one ErrorInfo, plus BadRequest with at
    most MAX_FIELD_VIOLATIONS violations; every part of bounded length (see above)."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain)
    info.metadata.update(error.metadata)
    details = [_pack(info)]
    violations = error.field_violations()
    message = error.message
    if len(violations) > MAX_FIELD_VIOLATIONS:
        message = (
            f"{_cut(message, MAX_MESSAGE_CHARS - 40)}; "
            f"and {len(violations) - MAX_FIELD_VIOLATIONS} more"
        )
    if violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=_cut(v.field, MAX_FIELD_CHARS),
                    description=_cut(v.description, MAX_DESCRIPTION_CHARS),
                    reason=v.reason,
                )
                for v in violations[:MAX_FIELD_VIOLATIONS]
            ]
        )
        details.append(_pack(bad))
    return status_pb2.Status(
        code=error.code.value[0], message=_cut(message, MAX_MESSAGE_CHARS), details=details
    )


def internal_status(domain: str) -> status_pb2.Status:
    """The status for an unexpected failure; it reveals nothing about the cause."""
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=domain)
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message="internal error", details=[_pack(info)]
    )


def _pack(message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed

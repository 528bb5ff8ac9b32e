"""Failed calls as exceptions that carry what the server said.

Every carenet error is a ``google.rpc.Status`` in the ``grpc-status-details-bin`` trailer:
exactly one ``ErrorInfo`` (an UPPER_SNAKE ``reason``, a ``domain`` such as
``referral.carenet`` and ``metadata``) and, for INVALID_ARGUMENT, a ``BadRequest`` naming
each offending field. :func:`from_rpc_error` decodes them once, here, so that a caller
writes ``except CarenetError as e: if e.reason == "DUPLICATE_OPEN_REFERRAL": ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "CarenetError",
    "FieldViolation",
    "from_rpc_error",
]

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One entry of a ``BadRequest``: the field path (e.g. ``referral.offer``) and why."""

    field: str
    description: str
    reason: str = ""


@dataclass
class CarenetError(Exception):
    """A call that failed: the gRPC code, the message, and the decoded ``google.rpc.Status``.

    ``reason``, ``domain`` and ``metadata`` come from the ``ErrorInfo``; they are empty when
    the failure came from the transport (a deadline, an unreachable server) rather than from
    a carenet service.
    """

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: tuple[FieldViolation, ...] = ()

    def __str__(self) -> str:
        head = f"{self.code.name}"
        if self.reason:
            head += f" {self.reason}"
        text = f"{head}: {self.message}" if self.message else head
        for violation in self.field_violations:
            text += f"\n  {violation.field}: {violation.description}"
        return text

    @property
    def retryable(self) -> bool:
        """Only UNAVAILABLE is worth retrying (AIP-194)."""
        return self.code == grpc.StatusCode.UNAVAILABLE

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code.name,
            "message": self.message,
            "reason": self.reason,
            "domain": self.domain,
            "metadata": dict(self.metadata),
            "field_violations": [
                {"field": v.field, "description": v.description, "reason": v.reason}
                for v in self.field_violations
            ],
        }


def _status_of(error: grpc.RpcError) -> status_pb2.Status | None:
    trailing = getattr(error, "trailing_metadata", None)
    trailers: Any = trailing() if callable(trailing) else None
    for key, value in trailers or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:
                return None
    return None


def from_rpc_error(error: grpc.RpcError) -> CarenetError:
    """Decodes a failed call (a ``grpc.RpcError`` that is also a ``grpc.Call``)."""
    code_of = getattr(error, "code", None)
    code = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
    details_of = getattr(error, "details", None)
    message = (details_of() if callable(details_of) else "") or ""
    status = _status_of(error)
    if status is None:
        return CarenetError(code=code, message=message)
    reason, domain, metadata = "", "", {}
    violations: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if not reason:
                reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(
                FieldViolation(v.field, v.description, getattr(v, "reason", ""))
                for v in bad.field_violations
            )
    return CarenetError(
        code=code,
        message=status.message or message,
        reason=reason,
        domain=domain,
        metadata=metadata,
        field_violations=tuple(violations),
    )

"""Errors as FHIR OperationOutcome with the HTTP status that matches the gRPC code.

The services' messages and ErrorInfo reasons never name a patient (the platform's rule), so
the outcome carries the reason as ``details.coding`` and the message as ``diagnostics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from servicekit.platform_api import error_details

ISSUE_TYPE = "http://hl7.org/fhir/issue-type"

# gRPC code -> (HTTP status, OperationOutcome issue code)
_BY_CODE: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid"),
    # The caller's token passed this API's own check, but a service refused it (it does
    # not name that service, or it expired in between): the token is not good for this
    # request, answered as RFC 6750 says (401, WWW-Authenticate error="invalid_token").
    grpc.StatusCode.UNAUTHENTICATED: (401, "login"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "forbidden"),
    grpc.StatusCode.NOT_FOUND: (404, "not-found"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "duplicate"),
    grpc.StatusCode.ABORTED: (409, "conflict"),
    grpc.StatusCode.FAILED_PRECONDITION: (422, "business-rule"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "throttled"),
    grpc.StatusCode.UNAVAILABLE: (503, "transient"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "not-supported"),
}


@dataclass(frozen=True)
class FhirError(Exception):
    """An answer other than success: its HTTP status, issue code, reason and message."""

    status: int
    code: str
    reason: str
    message: str
    #: RFC 6750 error code of a 401's ``WWW-Authenticate`` challenge ("" when no token came)
    bearer_error: str = ""

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of a 401."""
        found = 'Bearer realm="carenet"'
        return f'{found}, error="{self.bearer_error}"' if self.bearer_error else found

    def outcome(self, canonical_base: str) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": "error", "code": self.code}
        if self.reason:
            issue["details"] = {
                "coding": [
                    {"system": f"{canonical_base}/CodeSystem/error-reason", "code": self.reason}
                ],
                "text": self.message or self.reason,
            }
        elif self.message:
            issue["details"] = {"text": self.message}
        return {"resourceType": "OperationOutcome", "issue": [issue]}


def invalid(reason: str, message: str) -> FhirError:
    return FhirError(400, "invalid", reason, message)


def not_found(message: str = "no such resource") -> FhirError:
    return FhirError(404, "not-found", "NOT_FOUND", message)


def from_rpc(error: grpc.RpcError) -> FhirError:
    """The FhirError of a failed gRPC call: its code, ErrorInfo reason and message."""
    found = error_details(error)
    http, issue = _BY_CODE.get(found.code, (500, "exception"))
    message = "the request could not be completed" if http == 500 else found.message
    bearer_error = "invalid_token" if http == 401 else ""
    return FhirError(http, issue, found.reason, message, bearer_error)

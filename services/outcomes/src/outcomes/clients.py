"""The outcomes service's outgoing dependency: identity's Authorize and BatchAuthorize.

Every call carries this service's own service-account token and the end user as
``subject``, has a deadline, and fails closed: identity unreachable means UNAVAILABLE,
never a permit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import grpc

from servicekit.auth import Principal
from servicekit.authorization import Access, Category, Decision, IdentityAuthorizer

__all__ = ["Decision", "GrpcIdentityClient", "IdentityClient"]


class IdentityClient(Protocol):
    def authorize(
        self,
        subject: Principal,
        patient_id: str,
        action: str,
        purpose: str,
        record_holder_id: str = "",
    ) -> Decision:
        """One decision for one patient and one record holder (identity writes one
        access-log entry). ``record_holder_id`` names the organisation whose record is
        accessed; empty means the subject's own organisation. A patient identity does not
        know (or a record holder it does not know) is a refusal with ``found`` False."""

    def batch_authorize(
        self, subject: Principal, patient_ids: Sequence[str], action: str, purpose: str
    ) -> dict[str, Decision]:
        """One decision (and one access-log entry) per distinct patient, about the
        subject's own organisation's record."""


class GrpcIdentityClient:
    """``IdentityClient`` over identity's gRPC API (see servicekit.authorization)."""

    def __init__(self, channel: grpc.Channel, deadline_seconds: float = 5.0) -> None:
        self._authorizer = IdentityAuthorizer(channel, deadline_seconds=deadline_seconds)

    def authorize(
        self,
        subject: Principal,
        patient_id: str,
        action: str,
        purpose: str,
        record_holder_id: str = "",
    ) -> Decision:
        return self._authorizer.authorize(
            subject,
            patient_id,
            Category.MEASUREMENTS,
            Access(action),
            purpose=purpose,
            record_holder_id=record_holder_id,
        )

    def batch_authorize(
        self, subject: Principal, patient_ids: Sequence[str], action: str, purpose: str
    ) -> dict[str, Decision]:
        return self._authorizer.batch_authorize(
            subject, patient_ids, Category.MEASUREMENTS, Access(action), purpose=purpose
        )

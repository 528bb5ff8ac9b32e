"""Referral's outgoing dependency: identity's ``Authorize``, behind a small Protocol so that
use cases are unit-tested with a fake (tests/fakes.py)."""

from __future__ import annotations

from typing import Protocol

import grpc

from servicekit.auth import Principal
from servicekit.authorization import Access as Action
from servicekit.authorization import Category, Decision, IdentityAuthorizer, ReferralContext

__all__ = [
    "Action",
    "Decision",
    "GrpcIdentityClient",
    "IdentityClient",
    "ReferralContext",
]


class IdentityClient(Protocol):
    def authorize(
        self,
        subject: Principal,
        patient_id: str,
        action: Action,
        *,
        referral: ReferralContext | None = None,
        purpose: str = "",
        record_holder_id: str = "",
    ) -> Decision:
        """Asks identity (which logs the access); raises IdentityUnavailable if it can't.
        ``record_holder_id``: the organisation holding the referral data (its referrer),
        when a question is about one referral; empty: the subject's own."""
        ...


class GrpcIdentityClient:
    """Calls identity with referral's own service-account token (set on the channel),
    passing the end user as ``subject``; fails closed (see servicekit.authorization)."""

    def __init__(self, channel: grpc.Channel, deadline_seconds: float = 5.0) -> None:
        self._authorizer = IdentityAuthorizer(channel, deadline_seconds=deadline_seconds)

    def authorize(
        self,
        subject: Principal,
        patient_id: str,
        action: Action,
        *,
        referral: ReferralContext | None = None,
        purpose: str = "",
        record_holder_id: str = "",
    ) -> Decision:
        return self._authorizer.authorize(
            subject,
            patient_id,
            Category.REFERRAL,
            action,
            referral=referral,
            purpose=purpose,
            record_holder_id=record_holder_id,
        )

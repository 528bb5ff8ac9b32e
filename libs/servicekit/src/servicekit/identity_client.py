"""The one way a service asks identity about an access to patient data.

A service holds an :class:`IdentityClient` (in its ``Deps``) and asks it
:class:`AccessQuestion` s: may ``subject`` do ``access`` on this patient's data of the
client's data category, held by ``record_holder_id``, for ``purpose`` (and, for referral
data, about which referral). Each question is one access, decided and logged by identity
(one access-log entry). :class:`BatchAccessQuestion` asks the same about many patients at
once, about one record holder (one decision and one entry per distinct patient).

The data category is the client's, not the question's: a service asks about its own data
(referral about referrals, careplan about care plans, outcomes about measurements), so it
builds its client once with that category (:class:`GrpcIdentityClient`) and its use cases
never name it.

Answers are :class:`AccessDecision` s. A patient identity does not know in the subject's
care group is a refusal like any other (identity's reason), never a different kind of
answer; identity that cannot be asked raises
:class:`~servicekit.authorization.IdentityUnavailable` (UNAVAILABLE), never a permit (see
servicekit.authorization). Unit tests use ``testkit.fakes.FakeIdentity``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from servicekit.auth import Principal
from servicekit.authorization import (
    Access,
    Category,
    IdentityAuthorizer,
    IdentityUnavailable,
    ReferralContext,
    refusal,
    require,
)
from servicekit.authorization import Decision as AccessDecision

__all__ = [
    "Access",
    "AccessDecision",
    "AccessQuestion",
    "BatchAccessQuestion",
    "Category",
    "GrpcIdentityClient",
    "IdentityClient",
    "IdentityUnavailable",
    "ReferralContext",
    "refusal",
    "require",
]


@dataclass(frozen=True)
class AccessQuestion:
    """May ``subject`` do ``access`` on the patient's data held by ``record_holder_id``
    (empty: the subject's own organisation), for ``purpose``; ``referral`` names the
    referral the access is about (referral data only: identity applies the referral
    exception for its target)."""

    subject: Principal
    patient_id: str
    access: Access
    record_holder_id: str = ""
    purpose: str = ""
    referral: ReferralContext | None = None


@dataclass(frozen=True)
class BatchAccessQuestion:
    """The same question about each of ``patient_ids``: may ``subject`` do ``access`` on
    each patient's data held by ``record_holder_id`` (empty: the subject's own
    organisation), for ``purpose``. identity needs the record holder named for a read or
    update of measurements."""

    subject: Principal
    patient_ids: Sequence[str]
    access: Access
    purpose: str = ""
    record_holder_id: str = ""


class IdentityClient(Protocol):
    def authorize(self, question: AccessQuestion) -> AccessDecision:
        """identity's decision (logged there), asked once per access. Raises
        IdentityUnavailable when identity cannot be asked (fail closed)."""
        ...

    def authorize_many(self, question: BatchAccessQuestion) -> dict[str, AccessDecision]:
        """One decision per distinct patient (each logged there); a patient identity gave no
        answer for is refused. Raises IdentityUnavailable when identity cannot be asked."""
        ...


class GrpcIdentityClient:
    """:class:`IdentityClient` over identity's gRPC API for one data category, called with
    the service's own token (set on ``channel``) and the end user as subject."""

    def __init__(
        self, channel: grpc.Channel, category: Category, *, deadline_seconds: float = 5.0
    ) -> None:
        self._authorizer = IdentityAuthorizer(channel, deadline_seconds=deadline_seconds)
        self.category = category

    def authorize(self, question: AccessQuestion) -> AccessDecision:
        q = question
        return self._authorizer.authorize(
            q.subject,
            q.patient_id,
            self.category,
            q.access,
            record_holder_id=q.record_holder_id,
            purpose=q.purpose,
            referral=q.referral,
        )

    def authorize_many(self, question: BatchAccessQuestion) -> dict[str, AccessDecision]:
        q = question
        return self._authorizer.batch_authorize(
            q.subject,
            q.patient_ids,
            self.category,
            q.access,
            purpose=q.purpose,
            record_holder_id=q.record_holder_id,
        )

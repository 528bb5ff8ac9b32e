"""Fakes of shared clients, for unit tests only (integration and API tests run the real
services).

:class:`FakeIdentity` is the one fake of :class:`servicekit.identity_client.IdentityClient`.
It answers as identity does: a patient it does not know is refused like a patient without a
care relationship (``NO_CARE_RELATIONSHIP``), never a different kind of answer; when
``unavailable`` it raises ``IdentityUnavailable``, never permits. It records every question
so that a test can check what was asked (and that nothing was asked).

:func:`fake_principal` is the caller a unit test hands a use case (a KIS user's token by
default). :class:`FakeRequestRecords` is the ``add_request_record`` of a fake repository: it builds
the service's own request-record row (``servicekit.request_records``) and hands it to the
fake's ``keep_request_record``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from servicekit.auth import Principal
from servicekit.identity_client import (
    Access,
    AccessDecision,
    AccessQuestion,
    BatchAccessQuestion,
    IdentityUnavailable,
)
from servicekit.principals import principal

__all__ = ["PERMIT_REASON", "FakeIdentity", "FakeRequestRecords", "fake_principal"]

R = TypeVar("R")

PERMIT_REASON = "CARE_RELATIONSHIP"
UNKNOWN_REASON = "NO_CARE_RELATIONSHIP"


def _org_id(name: str) -> str:
    return name.removeprefix("organisations/")


@dataclass
class FakeIdentity:
    """Decides like this, in order:

    - ``unavailable``: raises IdentityUnavailable;
    - ``decide`` (when set) may answer any question itself (return None to go on);
    - a patient in ``unknown``: refused ``NO_CARE_RELATIONSHIP``;
    - a subject (``Principal.subject``) in ``deny``: refused with its reason;
    - ``permitted`` (when not None) lists the only patients permitted; others are refused
      with ``reason``;
    - ``holders`` (patient -> organisation ids), when set for a patient, lists the only
      record holders (the subject's own organisation when the question names none) whose
      records of that patient are permitted; others are refused with ``reason``;
    - ``read_only``: patients whose data may be read but not created or updated;
    - otherwise permitted (``CARE_RELATIONSHIP``).
    """

    deny: dict[str, str] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    permitted: set[str] | None = None
    holders: dict[str, set[str]] = field(default_factory=dict)
    read_only: set[str] = field(default_factory=set)
    reason: str = UNKNOWN_REASON
    unavailable: bool = False
    decide: Callable[[AccessQuestion], AccessDecision | None] | None = None
    questions: list[AccessQuestion] = field(default_factory=list)
    batches: list[BatchAccessQuestion] = field(default_factory=list)

    def authorize(self, question: AccessQuestion) -> AccessDecision:
        self.questions.append(question)
        return self._answer(question)

    def authorize_many(self, question: BatchAccessQuestion) -> dict[str, AccessDecision]:
        self.batches.append(question)
        if self.unavailable:
            raise IdentityUnavailable("identity could not decide; access refused")
        return {
            patient_id: self._answer(
                AccessQuestion(
                    question.subject,
                    patient_id,
                    question.access,
                    question.record_holder_id,
                    question.purpose,
                )
            )
            for patient_id in dict.fromkeys(question.patient_ids)
        }

    @property
    def asked_patients(self) -> list[str]:
        """The patients of every question, single and batch, in the order asked."""
        return [q.patient_id for q in self.questions] + [
            p for b in self.batches for p in dict.fromkeys(b.patient_ids)
        ]

    def _answer(self, q: AccessQuestion) -> AccessDecision:
        if self.unavailable:
            raise IdentityUnavailable("identity could not decide; access refused")
        if self.decide is not None:
            answer = self.decide(q)
            if answer is not None:
                return answer
        if q.patient_id in self.unknown:
            return AccessDecision(False, UNKNOWN_REASON)
        if q.subject.subject in self.deny:
            return AccessDecision(False, self.deny[q.subject.subject])
        if self.permitted is not None and q.patient_id not in self.permitted:
            return AccessDecision(False, self.reason)
        allowed = self.holders.get(q.patient_id)
        holder = q.record_holder_id or _org_id(q.subject.organisation)
        if allowed is not None and holder not in allowed:
            return AccessDecision(False, self.reason)
        if q.access is not Access.READ and q.patient_id in self.read_only:
            return AccessDecision(False, self.reason)
        return AccessDecision(True, PERMIT_REASON, "care-relationship")


class FakeRequestRecords(Generic[R]):
    """``add_request_record`` of a fake repository. A subclass names its service's row
    (``request_record_row = RequestRecord``) and keeps a row in ``keep_request_record``
    (pending until commit, or refused on a duplicate key, as its store does)."""

    request_record_row: ClassVar[Callable[..., Any]]

    def keep_request_record(self, record: R) -> None:
        raise NotImplementedError

    def add_request_record(
        self, caller: str, request_id: str, method: str, fingerprint: str, resource_name: str
    ) -> None:
        record: R = type(self).request_record_row(
            caller=caller,
            request_id=request_id,
            method=method,
            fingerprint=fingerprint,
            resource_name=resource_name,
        )
        self.keep_request_record(record)


def fake_principal(
    subject: str,
    *,
    roles: Iterable[str],
    organisation: str = "",
    patient: str = "",
    care_group: str = "cg-zuidoost",
    client_id: str = "carenet-kis",
) -> Principal:
    """A caller as the token interceptor makes it: ``organisation``, ``care_group`` and
    ``patient`` are ids (``gp-de-linde``), made resource names (servicekit.principals)."""
    return principal(
        subject,
        client_id=client_id,
        roles=roles,
        organisation=organisation,
        care_group=care_group,
        patient=patient,
    )

"""Changing a referral: the status machine with places and the waitlist, and feedback.
Each change writes its history entry and outbox event in the same transaction."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from referral import eligibility, errors
from referral.access import found_referral, party_of
from referral.deps import Deps
from referral.errors import Violations
from referral.models import (
    OUTCOME_STATES,
    REASON_REQUIRED,
    BusinessStatus,
    Enrolment,
    Offer,
    Party,
    Referral,
    Status,
    TransitionRefusal,
    check_transition,
)
from referral.unit_of_work import UnitOfWork
from referral.use_cases.common import check_etag, check_text
from referral.use_cases.history import (
    PendingEvents,
    ReferralView,
    add_history,
    event_payload,
    view_of,
)
from referral.use_cases.referrals import load_for_patient, may_be_a_party
from servicekit import metrics
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument
from servicekit.identity_client import Access


@dataclass(frozen=True)
class OutcomeInput:
    attendance: str = ""
    sessions_attended: int = 0
    sessions_planned: int = 0
    result_summary: str = ""
    measurements: Sequence[dict[str, Any]] = ()
    enrolment: Enrolment | None = None

    def validate(self, path: str) -> None:
        v = Violations()
        if self.sessions_attended < 0 or self.sessions_planned < 0:
            v.add(f"{path}.sessions_attended", "must not be negative", "INVALID_OUTCOME")
        check_text(v, f"{path}.result_summary", self.result_summary)
        for i, m in enumerate(self.measurements):
            if not eligibility.CODE.fullmatch(str(m.get("code", ""))):
                v.add(f"{path}.measurements[{i}].code", "is required", "INVALID_MEASUREMENT")
            if not math.isfinite(float(m.get("value", 0.0))):
                v.add(f"{path}.measurements[{i}].value", "must be finite", "INVALID_MEASUREMENT")
        v.raise_if_any()

    def as_dict(self, recorded_by: str, now: dt.datetime) -> dict[str, Any]:
        return {
            "attendance": self.attendance,
            "sessions_attended": self.sessions_attended,
            "sessions_planned": self.sessions_planned,
            "result_summary": self.result_summary,
            "measurements": [dict(m) for m in self.measurements],
            "enrolment": self.enrolment.value if self.enrolment else "",
            "record_time": now.isoformat(),
            "recorded_by": recorded_by,
        }


def _take_place(offer: Offer, referral: Referral) -> bool:
    if referral.holds_place:
        return True
    if not offer.has_free_place():
        return False
    if offer.counts_places:
        offer.places_taken += 1
    referral.holds_place = True
    referral.enrolment = Enrolment.ENROLLED.value
    return True


def _leave_waitlist(uow: UnitOfWork, offer: Offer, referral: Referral) -> None:
    if referral.waitlist_position > 0:
        position = referral.waitlist_position
        referral.waitlist_position = 0
        offer.waitlist_length = max(0, offer.waitlist_length - 1)
        uow.repo.flush()
        uow.repo.move_up_waitlist(offer.id, position)


def _release_place(
    uow: UnitOfWork,
    offer: Offer,
    referral: Referral,
    principal: Principal,
    pending: PendingEvents,
    now: dt.datetime,
) -> None:
    """Frees the referral's place and gives it to the first on the waitlist."""
    _leave_waitlist(uow, offer, referral)
    if not referral.holds_place:
        return
    referral.holds_place = False
    if offer.counts_places:
        offer.places_taken = max(0, offer.places_taken - 1)
    uow.repo.flush()
    waiting = uow.repo.first_waitlisted(offer.id)
    if waiting is not None and waiting.id != referral.id and offer.has_free_place():
        _leave_waitlist(uow, offer, waiting)
        _take_place(offer, waiting)
        waiting.touch(now)
        add_history(
            uow, waiting, principal, "ENROLMENT", waiting.status, "a place became free", now
        )
        pending.add(
            waiting,
            event_payload(
                waiting,
                offer,
                "enrolment-changed",
                waiting.status,
                principal.responsible_user,
                "",
                now,
            ),
        )


def _party_to_change(
    deps: Deps, uow: UnitOfWork, principal: Principal, patient_id: str, referral_id: str
) -> tuple[Referral, Party]:
    """The referral to change (locked) and the caller's relation to it, once identity has
    permitted the change; as ``GetReferral`` (referral.use_cases.referrals.get_referral),
    who may change it is checked before identity is asked, so that identity logs only a
    change that can happen: a caller that can be no referral's party (an insurer, the care
    group's admin or auditor, a KIS acting as itself) is PERMISSION_DENIED
    ``ROLE_NOT_PERMITTED``, and a referral the caller is no party to is answered exactly as
    one that does not exist (NOT_FOUND ``REFERRAL_NOT_FOUND``, whatever the patient).
    Neither asks identity, so neither is logged. A party's change is then decided by
    identity with the referral's context and record holder (one entry)."""
    if not may_be_a_party(principal):
        raise errors.RoleNotPermitted("this role changes no referral")
    found = load_for_patient(uow, principal, patient_id, referral_id, for_update=True)
    party = party_of(principal, found) if found is not None else None
    if found is None or party is None:
        raise errors.ReferralNotFound("referral not found")
    referral = found_referral(deps.identity, principal, patient_id, found, Access.UPDATE)
    return referral, party


def transition_referral(  # noqa: PLR0912, PLR0915
    deps: Deps,
    principal: Principal,
    patient_id: str,
    referral_id: str,
    target: Status | None,
    *,
    reason: str = "",
    business_status: BusinessStatus | None = None,
    outcome: OutcomeInput | None = None,
    etag: str = "",
) -> ReferralView:
    v = Violations()
    if target is None:
        v.add("status", "is required", "STATUS_REQUIRED")
    check_text(v, "reason", reason)
    v.raise_if_any()
    assert target is not None
    if outcome is not None:
        outcome.validate("outcome")
    now = deps.clock()
    with deps.uow() as uow:
        referral, party = _party_to_change(deps, uow, principal, patient_id, referral_id)
        current = Status(referral.status)
        refusal = check_transition(current, target, party)
        if refusal is TransitionRefusal.NOT_IN_MACHINE:
            raise errors.InvalidTransition(f"{current.value} cannot become {target.value}")
        if refusal is TransitionRefusal.WRONG_PARTY:
            raise errors.WrongParty(f"the {party.value} may not make this change")
        if target in REASON_REQUIRED and not reason.strip():
            raise InvalidArgument.single(
                "reason", f"a reason is required for {target.value}", "REASON_REQUIRED"
            )
        if outcome is not None and target not in OUTCOME_STATES:
            raise InvalidArgument.single(
                "outcome", "feedback comes with acting on a referral", "OUTCOME_NOT_ALLOWED"
            )
        check_etag(etag, referral.etag)
        offer = uow.repo.offer(referral.offer_id, for_update=True)
        assert offer is not None
        capacity_before = (offer.places_taken, offer.waitlist_length)
        pending = PendingEvents()
        if target is Status.ACCEPTED and not _take_place(offer, referral):
            offer.waitlist_length += 1
            referral.waitlist_position = offer.waitlist_length
            referral.enrolment = Enrolment.NOT_ENROLLED_ON_WAITLIST.value
        elif target in (Status.IN_PROGRESS, Status.COMPLETED) and not referral.holds_place:
            if not offer.has_free_place():
                raise errors.InvalidTransition(
                    "the course has no free place yet", reason="NO_PLACE_AVAILABLE"
                )
            _leave_waitlist(uow, offer, referral)
            _take_place(offer, referral)
        if target in (
            Status.REJECTED,
            Status.CANCELLED,
            Status.FAILED,
            Status.COMPLETED,
            Status.ENTERED_IN_ERROR,
        ):
            _release_place(uow, offer, referral, principal, pending, now)
            if target is not Status.COMPLETED:
                referral.enrolment = Enrolment.NOT_ENROLLED.value
        referral.set_status(target)
        referral.status_reason = reason
        if business_status is not None:
            referral.business_status = business_status.value
        if outcome is not None:
            referral.outcome = outcome.as_dict(principal.organisation, now)
            if outcome.enrolment is not None:
                referral.enrolment = outcome.enrolment.value
        referral.touch(now)
        if (offer.places_taken, offer.waitlist_length) != capacity_before:
            offer.touch(now)
        add_history(uow, referral, principal, "STATUS", current.value, reason, now)
        pending.items.insert(
            0,
            (
                referral,
                event_payload(
                    referral,
                    offer,
                    "status-changed",
                    current.value,
                    principal.responsible_user,
                    reason,
                    now,
                ),
            ),
        )
        pending.flush(uow, now)
        uow.commit()
        metrics.domain().referral_transition(current.value, target.value)
        return view_of(uow, referral)


def record_outcome(
    deps: Deps,
    principal: Principal,
    patient_id: str,
    referral_id: str,
    outcome: OutcomeInput,
    etag: str = "",
) -> ReferralView:
    outcome.validate("outcome")
    now = deps.clock()
    with deps.uow() as uow:
        referral, party = _party_to_change(deps, uow, principal, patient_id, referral_id)
        if party is not Party.TARGET:
            raise errors.WrongParty("only the target records feedback")
        if Status(referral.status) not in OUTCOME_STATES:
            raise errors.InvalidTransition(
                "no feedback before the target has acted", reason="OUTCOME_NOT_ALLOWED_IN_STATE"
            )
        check_etag(etag, referral.etag)
        offer = uow.repo.offer(referral.offer_id)
        assert offer is not None
        referral.outcome = outcome.as_dict(principal.organisation, now)
        if outcome.enrolment is not None:
            referral.enrolment = outcome.enrolment.value
        referral.touch(now)
        add_history(uow, referral, principal, "OUTCOME", referral.status, "", now)
        pending = PendingEvents()
        pending.add(
            referral,
            event_payload(
                referral,
                offer,
                "outcome-recorded",
                referral.status,
                principal.responsible_user,
                "",
                now,
            ),
        )
        pending.flush(uow, now)
        uow.commit()
        return view_of(uow, referral)

"""What every change of a referral writes besides the referral: its history entry and its
outbox event (numbered by the stream's readers once its transaction has committed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from referral.access import org_id
from referral.models import (
    HistoryEntry,
    Offer,
    Referral,
)
from referral.unit_of_work import UnitOfWork
from referral.use_cases.common import new_id
from servicekit.auth import Principal


def add_history(
    uow: UnitOfWork,
    referral: Referral,
    principal: Principal,
    kind: str,
    from_status: str | None,
    reason: str,
    now: dt.datetime,
) -> HistoryEntry:
    entry = HistoryEntry(
        referral_id=referral.id,
        kind=kind,
        from_status=from_status,
        to_status=referral.status,
        business_status=referral.business_status,
        reason=reason,
        actor=principal.responsible_user,
        actor_org_id=org_id(principal),
        change_time=now,
    )
    uow.repo.add_history(entry)
    return entry


def event_payload(
    referral: Referral,
    offer: Offer,
    event_type: str,
    previous: str | None,
    actor: str,
    reason: str,
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "type": event_type,
        "event_time": now.isoformat(),
        "referral": referral.name,
        "patient": f"patients/{referral.patient_id}",
        "offer": f"offers/{referral.offer_id}",
        "offer_category": offer.category,
        "referrer_organisation": f"organisations/{referral.referrer_org_id}",
        "target_organisation": f"organisations/{referral.target_org_id}",
        "care_group": f"organisations/{referral.care_group_id}",
        "status": referral.status,
        "previous_status": previous or "",
        "business_status": referral.business_status or "",
        "enrolment": referral.enrolment,
        "waitlist_position": referral.waitlist_position,
        "outcome": referral.outcome,
        "actor": actor,
        "reason": reason,
    }


@dataclass
class PendingEvents:
    """Events of one transaction, written as its last statements."""

    items: list[tuple[Referral, dict[str, Any]]] = field(default_factory=list)

    def add(self, referral: Referral, payload: dict[str, Any]) -> None:
        self.items.append((referral, payload))

    def flush(self, uow: UnitOfWork, now: dt.datetime) -> None:
        """Writes the events as the transaction's last statements, after the changes of the
        referrals they describe are sent (see OutboxEvent)."""
        uow.repo.flush()
        for referral, payload in self.items:
            uow.repo.append_outbox_event(outbox_values(referral, payload, now))


def outbox_values(referral: Referral, payload: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {
        "event_id": new_id(),
        "event_type": payload["type"],
        "referral_id": referral.id,
        "patient_id": referral.patient_id,
        "care_group_id": referral.care_group_id,
        "referrer_org_id": referral.referrer_org_id,
        "target_org_id": referral.target_org_id,
        "payload": payload,
        "create_time": now,
    }


@dataclass(frozen=True)
class ReferralView:
    referral: Referral
    history: Sequence[HistoryEntry]


def view_of(uow: UnitOfWork, referral: Referral) -> ReferralView:
    return ReferralView(referral, list(uow.repo.history(referral.id)))

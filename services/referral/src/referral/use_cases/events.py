"""The referral event stream (``WatchReferralEvents``): committed outbox events in cursor
order, for the parties, the patient and platform services. Before each read the stream
numbers the events committed since the last numbering (``ReferralRepository.
number_events``), so cursors are handed out once, in one order for every reader, and an
event committed later gets a later cursor. Every event delivered to a party
or the patient is a read of the referral's data, decided by identity when it is delivered
(with the referral's context and record holder, like a read of it) and logged there as one
access; an event identity refuses is not delivered. A decision is never kept for later
events: a care relationship ended or a consent withdrawn while the stream is open stops the
events that follow."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from referral import errors
from referral.access import (
    REFERRER_ROLES,
    TARGET_ROLES,
    care_group_id,
    org_id,
    organisation_system,
    patient_id_of,
)
from referral.deps import Deps
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument
from servicekit.identity_client import Access, AccessQuestion, ReferralContext

__all__ = ["Event", "watch_events"]


@dataclass(frozen=True)
class Event:
    cursor: int
    event_id: str
    payload: dict[str, Any]


def watch_events(
    deps: Deps,
    principal: Principal,
    *,
    after_cursor: int,
    patient_id: str = "",
    follow: bool = True,
    is_active: Callable[[], bool] = lambda: True,
) -> Iterator[Event]:
    """Every committed event after ``after_cursor`` the caller may see, in cursor order,
    then (with ``follow``) new ones as they commit, until ``is_active`` turns false.
    Without ``follow`` it ends once every event committed when it was called is delivered.

    Platform services (realm role ``service``) see every tenant's events. Others see the
    events of referrals they are party to (or, for an organisation's system, its
    organisation made or receives); each such event is decided by identity as it is
    delivered (one access-log entry per event: :func:`_may_see_event`), and an event
    identity refuses is left out.
    """
    if after_cursor < 0:
        raise InvalidArgument.single("after_cursor", "must not be negative", "INVALID_CURSOR")
    service = principal.is_service
    org = org_id(principal)
    if service:
        scope: dict[str, Any] = {"care_group_id": None}
    elif principal.is_patient:
        scope = {"care_group_id": care_group_id(principal), "patient_id": patient_id_of(principal)}
    elif org and (
        principal.roles & (REFERRER_ROLES | TARGET_ROLES) or organisation_system(principal)
    ):
        scope = {"care_group_id": care_group_id(principal), "org_id": org}
    else:
        raise errors.RoleNotPermitted("this role sees no referral events")
    cursor = after_cursor
    while is_active():
        with deps.uow() as uow:
            all_numbered = uow.repo.number_events(deps.watch_batch_size)
            uow.commit()
            rows = uow.repo.events_after(
                cursor, deps.watch_batch_size, only_patient=patient_id, **scope
            )
            batch = [Event(r.id, r.event_id, dict(r.payload)) for r in rows]
        for event in batch:
            cursor = event.cursor
            if not service and not _may_see_event(deps, principal, event):
                continue
            yield event
        if len(batch) < deps.watch_batch_size and all_numbered:
            if not follow:
                return
            deps.sleep(deps.watch_poll_seconds)


def _may_see_event(deps: Deps, principal: Principal, event: Event) -> bool:
    """identity's decision on delivering ``event``: the question of a read of its referral
    (its context and record holder, the referring organisation), asked now, for this event
    (one access-log entry). Never reused for a later event: a later event is a later access,
    and the facts identity decides on (care relationships, consents, the people directory)
    may have changed since."""
    referral = str(event.payload["referral"])
    patient_id = str(event.payload["patient"]).removeprefix("patients/")
    context = ReferralContext(
        referral,
        str(event.payload["target_organisation"]).removeprefix("organisations/"),
        str(event.payload["referrer_organisation"]).removeprefix("organisations/"),
    )
    decision = deps.identity.authorize(
        AccessQuestion(
            principal,
            patient_id,
            Access.READ,
            record_holder_id=context.referrer_organisation_id,
            purpose="referral-events",
            referral=context,
        )
    )
    return decision.permitted

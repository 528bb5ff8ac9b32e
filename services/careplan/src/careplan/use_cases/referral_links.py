"""Actions linked to a referral follow it: the referral-event consumer's use cases."""

from __future__ import annotations

from careplan.clients import ReferralEvent
from careplan.deps import Deps
from careplan.merge import MAX_TEXT
from careplan.models import AppliedEvent, ReferralState
from careplan.use_cases import versions

REFERRAL_CONSUMER = "referral-events"
CONSUMER_AUTHOR = "careplan:referral-events"


def consumer_cursor(deps: Deps, consumer: str = REFERRAL_CONSUMER) -> int:
    with deps.uow() as uow:
        return uow.repo.cursor(consumer)


def apply_referral_event(
    deps: Deps, event: ReferralEvent, consumer: str = REFERRAL_CONSUMER
) -> bool:
    """Makes the actions linked to the event's referral follow it, and advances the cursor,
    in one transaction. An event at or below the cursor, or already applied (by event id),
    changes nothing. Returns whether a plan changed."""
    now = deps.clock()
    with deps.uow() as uow:
        position = uow.repo.lock_cursor(consumer)
        if event.cursor <= position or uow.repo.applied_event(event.event_id) is not None:
            if event.cursor > position:
                uow.repo.advance_cursor(consumer, event.cursor, now)
                uow.commit()
            return False
        applied = False
        view = uow.repo.plan_for_update(event.patient_id) if event.patient_id else None
        if view is not None:
            state = ReferralState(
                status=event.status,
                business_status=event.business_status,
                enrolment=event.enrolment,
                feedback_summary=event.feedback_summary[:MAX_TEXT],
                update_time=event.event_time or now,
                target_organisation=event.target_organisation,
            )
            content = view.content  # the view is this transaction's own copy
            changes = [
                action.follow_referral(state)
                for action in content.actions_linked_to(event.referral)
            ]
            if any(changes):
                new_view = versions.write_version(
                    uow,
                    view,
                    content,
                    now,
                    author=CONSUMER_AUTHOR,
                    organisation_id="",
                    summary=f"actions: {sum(changes)} follow referral {event.status or 'change'}",
                    changed=["actions"],
                )
                uow.repo.add(
                    AppliedEvent(
                        event_id=event.event_id[:100],
                        position=event.cursor,
                        patient_id=event.patient_id,
                        plan_version=new_view.version,
                        apply_time=now,
                    )
                )
                applied = True
        uow.repo.advance_cursor(consumer, event.cursor, now)
        uow.commit()
        return applied

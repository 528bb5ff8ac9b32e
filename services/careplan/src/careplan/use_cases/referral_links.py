"""Actions linked to a referral follow it: the referral-event consumer's use cases."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from careplan.clients import ReferralEvent
from careplan.deps import Deps
from careplan.merge import MAX_TEXT
from careplan.models import AppliedEvent, ReferralState
from careplan.use_cases import versions

REFERRAL_CONSUMER = "referral-events"
CONSUMER_AUTHOR = "careplan:referral-events"
# The ``consumer`` label of the consumer's lag (servicekit.metrics ``carenet.outbox.lag``).
LAG_LABEL = "careplan"
# A stream that has stayed open this long (or delivered an event) is connected: referral
# answers a watch it cannot serve at once, so only a live stream lasts.
CONNECTED_AFTER_SECONDS = 5.0


def lag_label(consumer: str) -> str:
    return LAG_LABEL if consumer == REFERRAL_CONSUMER else f"{LAG_LABEL}/{consumer}"


class ConsumerLag:
    """How far the consumer is behind the referral events, in seconds (read by the
    ``carenet.outbox.lag`` gauge; the alert CarenetOutboxLag fires on it):

    - while an event is being applied: the event's age (its commit time in referral);
    - while the stream is connected with nothing to apply: 0 (referral streams each event
      as it commits);
    - while the stream is down, or not yet connected: the time since the consumer was last
      connected (or started), an upper bound of the age of any event it has not received.

    The WatchReferralEvents stream has no heartbeat, so a stream counts as connected once
    it delivered an event or stayed open :data:`CONNECTED_AFTER_SECONDS`."""

    def __init__(
        self,
        clock: Callable[[], dt.datetime],
        connected_after: float = CONNECTED_AFTER_SECONDS,
    ) -> None:
        self._clock = clock
        self._connected_after = dt.timedelta(seconds=connected_after)
        self._lock = threading.Lock()
        self._down_since: dt.datetime = clock()
        self._opened: dt.datetime | None = None
        self._delivered = False
        self._applying: dt.datetime | None = None

    def _connected(self, now: dt.datetime) -> bool:
        return self._opened is not None and (
            self._delivered or now - self._opened >= self._connected_after
        )

    def opened(self) -> None:
        """A watch was started."""
        with self._lock:
            self._opened, self._delivered = self._clock(), False

    def received(self, event: ReferralEvent) -> None:
        """An event arrived and is being applied."""
        now = self._clock()
        with self._lock:
            self._delivered = True
            self._applying = event.event_time or now

    def applied(self) -> None:
        with self._lock:
            self._applying = None

    def closed(self) -> None:
        """The watch ended or broke: the consumer is behind from now on, or still from the
        last time it was connected."""
        now = self._clock()
        with self._lock:
            if self._connected(now):
                self._down_since = now
            self._opened, self._applying = None, None

    def seconds(self) -> float:
        now = self._clock()
        with self._lock:
            if self._applying is not None:
                return max(0.0, (now - self._applying).total_seconds())
            if self._connected(now):
                return 0.0
            return max(0.0, (now - self._down_since).total_seconds())


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

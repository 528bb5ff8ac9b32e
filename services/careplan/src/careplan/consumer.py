"""The background consumer that makes plans follow their linked referrals.

It reads referral's ``WatchReferralEvents`` from the durable cursor kept in the database,
and applies each event with :func:`careplan.use_cases.referral_links.apply_referral_event`,
which advances the cursor in the same transaction (and skips events already applied, by
event id). After a restart or a broken stream it resumes from the cursor, so no event is
skipped and none is applied twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from careplan.clients import ReferralEvents
from careplan.deps import Deps
from careplan.use_cases import referral_links
from servicekit import metrics

log = logging.getLogger("careplan.consumer")


class ReferralEventConsumer:
    def __init__(
        self,
        deps: Deps,
        events: Callable[[], ReferralEvents],
        *,
        retry_seconds: float = 1.0,
        consumer: str = referral_links.REFERRAL_CONSUMER,
    ) -> None:
        self.deps = deps
        self.events = events
        self.retry_seconds = retry_seconds
        self.consumer = consumer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: ReferralEvents | None = None
        self.applied = 0
        self.seen = 0
        self.lag = referral_links.ConsumerLag(deps.clock)
        metrics.domain().outbox_lag(referral_links.lag_label(consumer), self.lag_seconds)

    def lag_seconds(self) -> float:
        """What the ``carenet.outbox.lag`` gauge reads (see referral_links.ConsumerLag)."""
        return self.lag.seconds()

    def run_once(self) -> int:
        """Reads one stream from the cursor until it ends; returns the events handled."""
        handled = 0
        source = self.events()
        self._source = source
        self.lag.opened()
        try:
            for event in source.watch(referral_links.consumer_cursor(self.deps, self.consumer)):
                if self._stop.is_set():
                    break
                self.lag.received(event)
                changed = referral_links.apply_referral_event(self.deps, event, self.consumer)
                self.lag.applied()
                if changed:
                    self.applied += 1
                    log.info(
                        "referral_event_applied",
                        extra={
                            "cursor": event.cursor,
                            "event_id": event.event_id,
                            "status": event.status,
                        },
                    )
                self.seen += 1
                handled += 1
        finally:
            self.lag.closed()
            source.close()
        return handled

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the stream broke or the database hiccuped: resume later
                if self._stop.is_set():
                    break
                log.warning("referral_stream_interrupted", extra={"error": type(exc).__name__})
            self._stop.wait(self.retry_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="referral-events", daemon=True)
        self._thread.start()
        log.info("referral_consumer_started", extra={"consumer": self.consumer})

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._source is not None:
            self._source.close()
        if self._thread is not None:
            self._thread.join(timeout)

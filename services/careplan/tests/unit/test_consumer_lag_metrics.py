"""The referral-event consumer's lag (``carenet.outbox.lag``, consumer ``careplan``), read
through an in-process metric reader while the real consumer runs against a scripted
referral stream and a clock the test moves: the age of an event being applied, 0 once
caught up on a live stream, and the time since it was last connected while it is not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from careplan.clients import ReferralEvent
from careplan.consumer import ReferralEventConsumer
from careplan.deps import Deps
from careplan.models import Action, ActionKind, PlanContent
from careplan.use_cases import plans, referral_links
from servicekit import metrics as sk_metrics
from testkit.metrics import MetricReadings

from ..fakes import GP, REFERRAL, T0, FakeReferralEvents, fake_deps, referral_event


class MovingClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _deps(clock: MovingClock) -> Deps:
    deps = fake_deps()
    deps.clock = clock
    content = PlanContent(
        actions=[Action(id="gli", description="GLI", kind=ActionKind.REFERRAL, referral=REFERRAL)]
    )
    plans.create_care_plan(deps, GP, "p-0001", content)
    return deps


def _lag(metrics: MetricReadings) -> float:
    return metrics.value(sk_metrics.OUTBOX_LAG, consumer="careplan")


def test_the_lag_follows_the_stream(
    domain_metrics: MetricReadings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = MovingClock()
    deps = _deps(clock)
    backlog = [
        referral_event(1, "accepted", event_time=T0 + dt.timedelta(seconds=10)),
        referral_event(2, "completed", event_time=T0),
    ]
    stream = FakeReferralEvents(backlog, break_after=0)
    consumer = ReferralEventConsumer(deps, lambda: stream)

    clock.advance(30)
    assert _lag(domain_metrics) == 30  # never connected since it started
    with pytest.raises(ConnectionError):
        consumer.run_once()  # referral unreachable
    clock.advance(30)
    assert _lag(domain_metrics) == 60

    # Reconnected: while an event is applied, its age; caught up on a live stream, 0.
    seen_while_applying: list[float] = []
    apply = referral_links.apply_referral_event

    def applying(deps: Deps, event: ReferralEvent, consumer: str) -> bool:
        seen_while_applying.append(_lag(domain_metrics))
        clock.advance(2)
        return apply(deps, event, consumer)

    monkeypatch.setattr(referral_links, "apply_referral_event", applying)
    stream.break_after = None
    assert consumer.run_once() == 2
    assert seen_while_applying == [50, 62]
    assert referral_links.consumer_cursor(deps) == 2

    # The stream ended (referral restarting): behind from that moment on.
    clock.advance(120)
    assert _lag(domain_metrics) == 120

    class Quiet(FakeReferralEvents):
        """A live stream with nothing to deliver, read at its start and 6 s later."""

        def watch(self, after_cursor: int) -> Iterator[ReferralEvent]:
            quiet.append(_lag(domain_metrics))
            clock.advance(6)
            quiet.append(_lag(domain_metrics))
            yield from ()

    quiet: list[float] = []
    consumer.events = lambda: Quiet([])
    consumer.run_once()
    assert quiet == [120, 0]  # connected once the stream has stayed open 5 s

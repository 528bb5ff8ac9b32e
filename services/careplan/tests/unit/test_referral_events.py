"""The plan follows its linked referrals: applying events, idempotency and resuming."""

from __future__ import annotations

import dataclasses

import pytest

from careplan.consumer import ReferralEventConsumer
from careplan.deps import Deps
from careplan.models import Action, ActionKind, ActivityStatus, PlanContent
from careplan.use_cases import plans, referral_links, revisions
from servicekit.paging import PageRequest

from ..fakes import GP, PATIENT, REFERRAL, FakeReferralEvents, fake_deps, referral_event


def _deps() -> Deps:
    deps = fake_deps()
    content = PlanContent(
        actions=[Action(id="gli", description="GLI", kind=ActionKind.REFERRAL, referral=REFERRAL)]
    )
    plans.create_care_plan(deps, GP, "p-0001", content)
    return deps


def _action(deps: Deps) -> Action:
    return plans.get_care_plan(deps, PATIENT, "p-0001").content.actions[0]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("accepted", ActivityStatus.SCHEDULED),
        ("in-progress", ActivityStatus.IN_PROGRESS),
        ("completed", ActivityStatus.COMPLETED),
        ("failed", ActivityStatus.STOPPED),
        ("rejected", ActivityStatus.CANCELLED),
    ],
)
def test_the_linked_action_follows_the_referral_status(
    status: str, expected: ActivityStatus
) -> None:
    deps = _deps()
    assert referral_links.apply_referral_event(deps, referral_event(1, status))
    action = _action(deps)
    assert action.status is expected
    assert action.referral_state is not None and action.referral_state.status == status


def test_the_feedback_summary_is_attached_to_the_action() -> None:
    deps = _deps()
    referral_links.apply_referral_event(
        deps, referral_event(1, "completed", feedback="12 van 12 sessies; 4 kg lichter")
    )
    state = _action(deps).referral_state
    assert state is not None and state.feedback_summary == "12 van 12 sessies; 4 kg lichter"


def test_each_applied_event_is_a_revision_by_the_consumer() -> None:
    deps = _deps()
    referral_links.apply_referral_event(deps, referral_event(1, "accepted"))
    history = revisions.list_revisions(deps, PATIENT, "p-0001", PageRequest(10)).items
    assert [(r.version, r.author) for r in history] == [
        (1, "dr.jansen"),
        (2, referral_links.CONSUMER_AUTHOR),
    ]


def test_an_event_applied_twice_changes_the_plan_once() -> None:
    deps = _deps()
    assert referral_links.apply_referral_event(deps, referral_event(1, "accepted"))
    assert not referral_links.apply_referral_event(deps, referral_event(1, "accepted"))
    replayed_with_new_cursor = dataclasses.replace(referral_event(1, "accepted"), cursor=2)
    assert not referral_links.apply_referral_event(deps, replayed_with_new_cursor)
    assert plans.get_care_plan(deps, PATIENT, "p-0001").version == 2


def test_an_event_of_an_unlinked_referral_only_advances_the_cursor() -> None:
    deps = _deps()
    assert not referral_links.apply_referral_event(
        deps, referral_event(5, "accepted", referral="patients/p-0001/referrals/other")
    )
    assert referral_links.consumer_cursor(deps) == 5
    assert plans.get_care_plan(deps, PATIENT, "p-0001").version == 1


def test_the_consumer_resumes_from_its_cursor_after_the_stream_breaks() -> None:
    deps = _deps()
    events = [
        referral_event(1, "accepted"),
        referral_event(2, "in-progress"),
        referral_event(3, "completed", feedback="klaar"),
    ]
    stream = FakeReferralEvents(events, break_after=1)
    consumer = ReferralEventConsumer(deps, lambda: stream)
    with pytest.raises(ConnectionError):
        consumer.run_once()
    assert referral_links.consumer_cursor(deps) == 1
    stream.break_after = None
    consumer.run_once()
    assert stream.watched_from == [0, 1]
    assert referral_links.consumer_cursor(deps) == 3
    assert consumer.applied == 3
    action = _action(deps)
    assert action.status is ActivityStatus.COMPLETED
    assert plans.get_care_plan(deps, PATIENT, "p-0001").version == 4


def test_a_restarted_consumer_applies_nothing_twice_when_the_stream_replays() -> None:
    deps = _deps()
    events = [referral_event(1, "accepted"), referral_event(2, "completed")]
    ReferralEventConsumer(deps, lambda: FakeReferralEvents(events)).run_once()

    class Replaying(FakeReferralEvents):
        def watch(self, after_cursor: int):  # type: ignore[no-untyped-def]
            self.watched_from.append(after_cursor)
            yield from self.events  # at-least-once: ignores the cursor

    restarted = ReferralEventConsumer(deps, lambda: Replaying(events))
    restarted.run_once()
    assert restarted.applied == 0
    assert plans.get_care_plan(deps, PATIENT, "p-0001").version == 3

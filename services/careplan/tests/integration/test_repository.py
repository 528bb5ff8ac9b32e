"""The repository and the referral-event application on real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from careplan.clients import ReferralEvent
from careplan.deps import Deps
from careplan.models import Action, ActionKind, ActivityStatus, PlanContent, PlanView
from careplan.repository import PlanCache
from careplan.unit_of_work import UnitOfWork
from careplan.use_cases import plans, referral_links, versions
from servicekit.db import make_session_factory
from servicekit.identity_client import AccessDecision, AccessQuestion, BatchAccessQuestion
from testkit.database import engine_on

REFERRAL = "patients/p-int-1/referrals/r1"


class NoIdentity:
    """Referral events are applied by the service itself: identity is never asked."""

    def authorize(self, question: AccessQuestion) -> AccessDecision:
        raise AssertionError("applying a referral event asks no one")

    def authorize_many(self, question: BatchAccessQuestion) -> dict[str, AccessDecision]:
        raise AssertionError("applying a referral event asks no one")


@pytest.fixture(scope="module")
def engine(careplan_db: str) -> Iterator[Engine]:
    with engine_on(careplan_db) as engine:
        yield engine


@pytest.fixture(scope="module")
def deps(engine: Engine) -> Deps:
    sessions = make_session_factory(engine)
    deps = Deps(uow=lambda: UnitOfWork(sessions), identity=NoIdentity())
    content = PlanContent(
        actions=[Action(id="gli", description="GLI", kind=ActionKind.REFERRAL, referral=REFERRAL)]
    )
    plans.seed_care_plan(deps, "p-int-1", "cg-zuidoost", "gp-de-linde", content, "test")
    return deps


def _event(cursor: int, status: str) -> ReferralEvent:
    return ReferralEvent(cursor, f"int-{cursor}", REFERRAL, "p-int-1", status, "", "", "", None)


def _plan(deps: Deps) -> PlanView:
    view = versions.load(deps, "p-int-1")
    assert view is not None
    return view


def test_compare_and_set_writes_only_at_the_expected_version(deps: Deps) -> None:
    version = _plan(deps).version
    with deps.uow() as uow:
        assert not uow.repo.compare_and_set("p-int-1", version + 5, {"status": "x"})
        uow.commit()
    assert _plan(deps).version == version


def test_an_event_is_applied_once_with_the_cursor_in_the_same_transaction(
    deps: Deps,
) -> None:
    before = _plan(deps).version
    assert referral_links.apply_referral_event(deps, _event(10, "accepted"))
    assert not referral_links.apply_referral_event(deps, _event(10, "accepted"))
    assert referral_links.consumer_cursor(deps) == 10
    view = _plan(deps)
    assert view.version == before + 1
    assert view.content.actions[0].status is ActivityStatus.SCHEDULED
    with deps.uow() as uow:
        assert uow.repo.applied_event("int-10") is not None
        assert uow.repo.revision("p-int-1", view.version) is not None


def test_concurrent_appliers_of_the_same_events_apply_each_once(deps: Deps) -> None:
    before = _plan(deps).version
    events = [
        _event(20 + i, s)
        for i, s in enumerate(["in-progress", "on-hold", "in-progress", "completed"])
    ]
    applied: list[bool] = []

    def run() -> None:
        for event in events:
            applied.append(referral_links.apply_referral_event(deps, event))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert applied.count(True) == len(events)
    assert _plan(deps).version == before + len(events)
    assert _plan(deps).content.actions[0].status is ActivityStatus.COMPLETED


def test_a_cached_plan_is_not_served_once_another_replica_wrote_a_newer_version(
    engine: Engine, deps: Deps
) -> None:
    sessions = make_session_factory(engine)
    plans = PlanCache()
    reader = Deps(
        uow=lambda: UnitOfWork(sessions, driver_engine=engine, plans=plans),
        identity=NoIdentity(),
    )
    first = versions.load(reader, "p-int-1")
    assert first is not None
    assert versions.load(reader, "p-int-1") is first  # unchanged: the cached copy
    assert referral_links.apply_referral_event(
        deps, _event(500, "in-progress")
    )  # the other replica

    after = versions.load(reader, "p-int-1")

    assert after is not None
    assert after.version == first.version + 1
    state = after.content.actions[0].referral_state
    assert state is not None
    assert state.status == "in-progress"
    assert versions.load(reader, "p-int-1") is after

"""The outbox on real PostgreSQL: events of concurrent transactions get gapless cursors
once committed, and a reader that follows the cursor gets each committed event once; a
rolled-back change leaves no event; a rule saved and loaded gives the same answer. The
order of events committed out of id order: test_event_order.py."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from referral import eligibility, errors
from referral.deps import Deps
from referral.models import OfferCategory, Status
from referral.unit_of_work import units_of_work
from referral.use_cases import curation, events, offers, referrals, transitions
from servicekit.idempotency import IdempotentRequest
from testkit.fakes import FakeIdentity

from ..fakes import ADMIN, GP, PROVIDER
from ..unit.helpers import PROFILE, number_committed_events


@pytest.fixture(scope="module")
def deps(referral_engine: Engine) -> Deps:
    deps = Deps(uow=units_of_work(referral_engine), identity=FakeIdentity(), sleep=lambda _s: None)
    data = offers.OfferInput(
        "Integration GLI",
        category=OfferCategory.GLI,
        eligibility=eligibility.GLI_RULE,
        total_places=0,
    )
    offers.create_offer(
        deps,
        PROVIDER,
        data,
        "it-gli",
        IdempotentRequest.of(PROVIDER, "it-gli", "CreateOffer", "it-gli"),
    )
    if offers.get_offer(deps, PROVIDER, "it-gli").state == "draft":
        curation.transition_offer(deps, PROVIDER, "it-gli", "propose")
        curation.transition_offer(deps, ADMIN, "it-gli", "publish")
    return deps


def _last_cursor(deps: Deps) -> int:
    number_committed_events(deps)
    with deps.uow() as uow:
        return max(
            (e.id for e in uow.repo.events_after(0, 1_000_000, care_group_id=None)), default=0
        )


def test_concurrent_changes_get_gapless_cursors_and_a_follower_misses_none(
    deps: Deps,
) -> None:
    start = _last_cursor(deps)
    seen: list[int] = []
    seen_ids: list[str] = []
    done = threading.Event()

    def follow() -> None:
        for event in events.watch_events(
            deps, GP, after_cursor=start, is_active=lambda: not done.is_set() or False
        ):
            seen.append(event.cursor)
            seen_ids.append(event.event_id)

    def work(n: int) -> None:
        for i in range(10):
            view = referrals.create_referral(
                deps,
                GP,
                f"p-it-{n}-{i}",
                referrals.ReferralInput("offers/it-gli", "integration", PROFILE),
            )
            transitions.transition_referral(
                deps, PROVIDER, f"p-it-{n}-{i}", view.referral.id, Status.ACCEPTED
            )

    follower = threading.Thread(target=follow)
    follower.start()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    end = _last_cursor(deps)
    assert end - start == 6 * 10 * 2
    # let the follower catch up, then stop it
    for _ in range(200):
        if len(seen) >= end - start:
            break
        threading.Event().wait(0.05)
    done.set()
    follower.join(timeout=5)
    assert seen == list(range(start + 1, end + 1))
    with deps.uow() as uow:
        written = [e.event_id for e in uow.repo.events_after(start, 1_000, care_group_id=None)]
    assert sorted(seen_ids) == sorted(written)
    assert len(set(seen_ids)) == len(written) == 6 * 10 * 2


def test_a_refused_change_writes_no_event(deps: Deps) -> None:
    view = referrals.create_referral(
        deps, GP, "p-it-refused", referrals.ReferralInput("offers/it-gli", "x", PROFILE)
    )
    before = _last_cursor(deps)
    with pytest.raises(Exception, match="cannot become"):
        transitions.transition_referral(
            deps, PROVIDER, "p-it-refused", view.referral.id, Status.COMPLETED
        )
    assert _last_cursor(deps) == before


def test_a_rule_saved_on_postgresql_gives_the_same_answers(deps: Deps) -> None:
    stored = offers.get_offer(deps, PROVIDER, "it-gli").eligibility
    assert stored == eligibility.GLI_RULE
    for bmi in (24.0, 27.0, 30.0, 41.5):
        profile = eligibility.Profile(
            age=40, bmi=bmi, risk_factors=("cardiovascular",), referrer_role="gp"
        )
        assert eligibility.evaluate(stored, profile) == eligibility.evaluate(
            eligibility.GLI_RULE, profile
        )


def test_a_referral_is_not_written_on_an_offer_that_changed_since_it_was_cached(
    referral_engine: Engine, deps: Deps
) -> None:
    """The one-statement create (a driver connection, no session) checks the cached offer's
    version as it writes; here another replica retires the offer in between."""
    replica = Deps(
        uow=units_of_work(referral_engine),
        identity=FakeIdentity(),
        sleep=lambda _s: None,
    )
    data = offers.OfferInput("Stale GLI", category=OfferCategory.GLI, total_places=0)
    offers.create_offer(
        deps,
        PROVIDER,
        data,
        "it-stale",
        IdempotentRequest.of(PROVIDER, "it-stale", "CreateOffer", "it-stale"),
    )
    curation.transition_offer(deps, PROVIDER, "it-stale", "propose")
    curation.transition_offer(deps, ADMIN, "it-stale", "publish")
    before = _last_cursor(deps)
    first = referrals.create_referral(
        replica, GP, "p-stale-1", referrals.ReferralInput("offers/it-stale", "it", PROFILE)
    )
    assert first.referral.status == Status.REQUESTED.value
    assert first.history[0].id > 0
    assert _last_cursor(deps) == before + 1  # the event went out with the referral
    curation.transition_offer(deps, ADMIN, "it-stale", "retire")  # the other replica

    with pytest.raises(errors.OfferNotListed):
        referrals.create_referral(
            replica, GP, "p-stale-2", referrals.ReferralInput("offers/it-stale", "it", PROFILE)
        )
    assert _last_cursor(deps) == before + 1

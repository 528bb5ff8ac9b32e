"""The referral use cases' unit tests (tests/unit/test_referrals.py), run again on the real
repository and PostgreSQL instead of the in-memory fakes: the one-statement create with its
unique keys, replays, the waitlist's moves, the lists' filters and the outbox, each on an
empty database of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text

from referral.deps import Deps
from referral.unit_of_work import UnitOfWork, units_of_work
from testkit.database import engine_on, migrated_database
from testkit.fakes import FakeIdentity

from ..fakes import Clock
from ..unit import test_referrals
from ..unit.helpers import listed_offer

TABLES = "outbox, referral_history, request_records, referrals, offers"


@pytest.fixture(scope="module")
def empty_engine() -> Iterator[Engine]:
    with (
        migrated_database("referral_use_cases", "referral.migrations") as url,
        engine_on(url) as engine,
    ):
        yield engine


@pytest.fixture
def deps(empty_engine: Engine, identity: FakeIdentity) -> Deps:
    with empty_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES}"))
        conn.execute(text("UPDATE outbox_head SET last_id = 0"))
    deps = Deps(
        uow=units_of_work(empty_engine), identity=identity, clock=Clock(), sleep=lambda _s: None
    )
    listed_offer(deps, "gli", total_places=1)
    _engines[id(deps)] = empty_engine
    return deps


_engines: dict[int, Engine] = {}


def units_of_work_of(deps: Deps) -> Callable[[], UnitOfWork]:
    """Units of work over the same database with caches of their own (another process)."""
    return units_of_work(_engines[id(deps)])


identity = test_referrals.identity

for _name in dir(test_referrals):
    if _name.startswith("test_"):
        globals()[_name] = getattr(test_referrals, _name)


def test_find_offers_sees_every_change_of_the_menu_card(deps: Deps) -> None:
    """The menu the repository caches per care group is read again after any offer of it
    changed (its stamp), on this process or any other."""
    from referral.use_cases import curation, matching

    from ..fakes import ADMIN, GP
    from ..unit.helpers import PROFILE

    listed_offer(deps, "walk", display_name="Walking group")
    found = matching.find_offers(deps, GP, PROFILE).items
    assert [m.offer.id for m in found] == ["gli", "walk"]
    other_process = Deps(uow=units_of_work_of(deps), identity=deps.identity, clock=deps.clock)
    curation.transition_offer(other_process, ADMIN, "walk", "retire")
    found = matching.find_offers(deps, GP, PROFILE).items
    assert [m.offer.id for m in found] == ["gli"]

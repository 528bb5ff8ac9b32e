"""Authorize decides on cached care relationships and consents; a change made anywhere (here:
through a second replica with its own cache) is seen by the very next decision, because the
log append checks the patient's facts version in the same statement."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from identity import demo
from identity.main import deps_for
from identity.models import AccessLogEntry, Action, DataCategory
from identity.use_cases import authorization, relationships
from identity.use_cases.deps import Deps
from servicekit.db import make_engine
from servicekit.migrations import upgrade
from servicekit.paging import PageRequest
from testkit.database import fresh_database

from .principals import GP

READ_PLAN = authorization.AuthorizeInput(
    patient_id="p-0001", data_category=DataCategory.CARE_PLAN, action=Action.READ
)


@pytest.fixture
def replicas() -> Iterator[tuple[Deps, Deps, Engine]]:
    """Two replicas of the service (each with its own engine and caches) on one database."""
    with fresh_database("identity_facts") as url:
        upgrade("identity.migrations", url)
        first, second = make_engine(url), make_engine(url)
        try:
            a, b = deps_for(first, b"pepper"), deps_for(second, b"pepper")
            demo.seed(a)
            yield a, b, first
        finally:
            first.dispose()
            second.dispose()


def _log_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(AccessLogEntry)).scalar_one())


def test_an_ended_care_relationship_denies_the_next_authorize_on_another_replica(
    replicas: tuple[Deps, Deps, Engine],
) -> None:
    a, b, engine = replicas
    assert authorization.authorize(a, GP, READ_PLAN).answer.permitted  # a now holds the facts
    listed = relationships.list_care_relationships(b, GP, "p-0001", PageRequest(50)).items
    own = [r for r in listed if r.organisation_id == "gp-de-linde" and r.end_time is None]
    assert own
    for rel in own:
        relationships.end_care_relationship(b, GP, "p-0001", rel.id, None)
    before = _log_rows(engine)

    result = authorization.authorize(a, GP, READ_PLAN)

    assert not result.answer.permitted
    assert result.answer.reason == "NO_CARE_RELATIONSHIP"
    assert _log_rows(engine) == before + 1  # the refused append on stale facts wrote nothing


def test_unchanged_facts_are_not_read_again(
    replicas: tuple[Deps, Deps, Engine],
) -> None:
    a, _b, _engine = replicas
    authorization.authorize(a, GP, READ_PLAN)
    with a.uow() as uow:  # every unit of work of a process shares one cache
        facts = uow.repo._cache.patient_facts
    cached = facts.peek("p-0001")
    assert cached is not None
    assert authorization.authorize(a, GP, READ_PLAN).answer.permitted
    assert facts.peek("p-0001") is cached

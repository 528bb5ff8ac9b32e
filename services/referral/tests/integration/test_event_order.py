"""The order of referral events on real PostgreSQL when transactions commit out of the order
in which they wrote their events (the outbox's sequence; writers take no lock in common): a
reader between the two commits gets the event committed first and never passes the other;
once both are committed every reader gets both, in commit order, exactly once; a reader
resumes from any cursor it was given. Migration 0007 keeps the cursors clients hold, and
the previous release's writer still works on it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, text

from referral.deps import Deps
from referral.unit_of_work import units_of_work
from referral.use_cases import events
from servicekit.migrations import alembic_config, upgrade
from testkit.database import engine_on, fresh_database
from testkit.fakes import FakeIdentity

from ..fakes import CAREPLAN
from ..unit.helpers import number_committed_events

PACKAGE = "referral.migrations"


@pytest.fixture(scope="module")
def deps(referral_engine: Engine) -> Deps:
    return Deps(uow=units_of_work(referral_engine), identity=FakeIdentity(), sleep=lambda _s: None)


def _event(referral: str) -> dict[str, object]:
    event_id = uuid.uuid4().hex
    return {
        "event_id": event_id,
        "event_type": "created",
        "referral_id": referral,
        "patient_id": "p-order",
        "care_group_id": "cg-zuidoost",
        "referrer_org_id": "gp-de-linde",
        "target_org_id": "gli-beweegfit",
        "payload": {
            "type": "created",
            "referral": f"patients/p-order/referrals/{referral}",
            "patient": "patients/p-order",
        },
        "create_time": dt.datetime.now(dt.UTC),
    }


def _last_cursor(deps: Deps) -> int:
    number_committed_events(deps)
    with deps.uow() as uow:
        rows = uow.repo.events_after(0, 1_000_000, care_group_id=None)
        return max((r.id for r in rows), default=0)


def _read(deps: Deps, after: int) -> list[events.Event]:
    """What a platform service's stream replays after ``after`` (``no_follow``)."""
    return list(events.watch_events(deps, CAREPLAN, after_cursor=after, follow=False))


def _id_of(engine: Engine, event_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT id FROM outbox WHERE event_id = :e"), {"e": event_id}
            ).scalar_one()
        )


SEQUENCE_ORDER = "SELECT event_id FROM outbox WHERE event_id IN (:a, :b) ORDER BY abs(id)"


def test_an_event_written_first_and_committed_last_is_delivered_after_the_other(
    deps: Deps,
) -> None:
    start = _last_cursor(deps)
    early, late = _event("r-order-early"), _event("r-order-late")
    slow = deps.uow()
    slow.__enter__()
    try:
        # The slow transaction writes first (first in the sequence) and commits last.
        slow.repo.append_outbox_event(early)
        with deps.uow() as fast:
            fast.repo.append_outbox_event(late)
            fast.commit()

        # Neither numbered yet: the slow transaction's event is first in the sequence.
        order = slow.session.execute(
            text(SEQUENCE_ORDER), {"a": early["event_id"], "b": late["event_id"]}
        ).scalars()
        assert list(order) == [early["event_id"], late["event_id"]]
        between = _read(deps, start)
        assert [e.event_id for e in between] == [late["event_id"]]
        assert between[0].cursor == start + 1
        slow.commit()
    finally:
        slow.__exit__(None, None, None)

    # The reader resumes from the cursor it was given and gets the event committed later,
    # which it had not been passed: with the id as the cursor it would never come.
    resumed = _read(deps, between[0].cursor)
    assert [(e.event_id, e.cursor) for e in resumed] == [(early["event_id"], start + 2)]
    # Any reader from the start: both, in commit order, once each.
    again = _read(deps, start)
    assert [(e.event_id, e.cursor) for e in again] == [
        (late["event_id"], start + 1),
        (early["event_id"], start + 2),
    ]
    assert _read(deps, start + 2) == []


def test_a_rolled_back_event_gets_no_cursor_and_leaves_no_gap(deps: Deps) -> None:
    start = _last_cursor(deps)
    with deps.uow() as aborted:
        aborted.repo.append_outbox_event(_event("r-order-aborted"))
        aborted.rollback()
    kept = _event("r-order-kept")
    with deps.uow() as uow:
        uow.repo.append_outbox_event(kept)
        uow.commit()
    assert [(e.event_id, e.cursor) for e in _read(deps, start)] == [(kept["event_id"], start + 1)]


def test_a_stream_resumed_from_any_cursor_gets_the_rest_once(deps: Deps) -> None:
    start = _last_cursor(deps)
    written = [_event(f"r-order-{i}") for i in range(7)]
    for values in written:
        with deps.uow() as uow:
            uow.repo.append_outbox_event(values)
            uow.commit()
    everything = _read(deps, start)
    assert [e.event_id for e in everything] == [v["event_id"] for v in written]
    assert [e.cursor for e in everything] == list(range(start + 1, start + 8))
    for i, event in enumerate(everything):
        assert [e.event_id for e in _read(deps, event.cursor)] == [
            v["event_id"] for v in written[i + 1 :]
        ]


OUTBOX_ROW = """
INSERT INTO outbox (id, event_id, event_type, referral_id, patient_id, care_group_id,
  referrer_org_id, target_org_id, payload, create_time)
VALUES (:id, :event_id, 'created', 'r-1', 'p-1', 'cg-zuidoost', 'gp-de-linde',
  'gli-beweegfit', '{}', now())
"""
# How the release before 0007 writes an event: the cursor from the head, under its lock.
PREVIOUS_RELEASE_WRITE = """
WITH head AS (UPDATE outbox_head SET last_id = last_id + 1 WHERE id = 1 RETURNING last_id)
INSERT INTO outbox (id, event_id, event_type, referral_id, patient_id, care_group_id,
  referrer_org_id, target_org_id, payload, create_time)
SELECT head.last_id, :event_id, 'created', 'r-1', 'p-1', 'cg-zuidoost', 'gp-de-linde',
  'gli-beweegfit', '{}', now() FROM head
"""


@pytest.fixture
def database() -> Iterator[tuple[str, Engine]]:
    with fresh_database("referral_cursor") as url, engine_on(url) as engine:
        yield url, engine


def test_migration_0007_keeps_the_cursors_clients_hold(database: tuple[str, Engine]) -> None:
    url, engine = database
    upgrade(PACKAGE, url, "0006")
    with engine.begin() as conn:
        for i in (1, 2, 3):
            conn.execute(text(OUTBOX_ROW), {"id": i, "event_id": f"old-{i}"})
        conn.execute(text("UPDATE outbox_head SET last_id = 3"))
    upgrade(PACKAGE, url, "0007")

    deps = Deps(uow=units_of_work(engine), identity=FakeIdentity(), sleep=lambda _s: None)
    new = _event("r-new")
    with deps.uow() as uow:
        uow.repo.append_outbox_event(new)
        uow.commit()
    assert _id_of(engine, str(new["event_id"])) < 0  # not numbered yet
    # A replica of the previous release, still running, writes with the head's lock.
    with engine.begin() as conn:
        conn.execute(text(PREVIOUS_RELEASE_WRITE), {"event_id": "previous-release"})
    # A client holding cursor 2 from before the migration gets event 3, then the others.
    assert [(e.event_id, e.cursor) for e in _read(deps, 2)] == [
        ("old-3", 3),
        ("previous-release", 4),
        (new["event_id"], 5),
    ]

    unnumbered = _event("r-unnumbered")
    with deps.uow() as uow:
        uow.repo.append_outbox_event(unnumbered)
        uow.commit()
    engine.dispose()
    command.downgrade(alembic_config(PACKAGE, url), "0006")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, event_id FROM outbox ORDER BY id")).all()
        head = conn.execute(text("SELECT last_id FROM outbox_head")).scalar_one()
    assert [tuple(r) for r in rows] == [
        (1, "old-1"),
        (2, "old-2"),
        (3, "old-3"),
        (4, "previous-release"),
        (5, new["event_id"]),
        (6, unnumbered["event_id"]),
    ]
    assert head == 6

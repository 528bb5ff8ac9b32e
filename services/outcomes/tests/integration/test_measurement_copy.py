"""The ingest's write on PostgreSQL: one binary COPY straight into ``measurements``, and the
staging table with INSERT ... ON CONFLICT when a source key exists already, which reports the
stored row under each taken key (locked), and corrections that keep the replaced value."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, text

from outcomes.repository import (
    Correction,
    MeasurementKey,
    MeasurementRow,
    StoredMeasurement,
    unix_micros,
)
from outcomes.unit_of_work import UnitOfWork
from servicekit.db import make_session_factory

CARE_GROUP = "cg-copy"
HOLDER = "gp-holder"
STAMP = dt.datetime(2026, 1, 3, 4, 5, 6, 789_012, tzinfo=dt.UTC)
KEY = MeasurementKey("p-copy-1", "HBA1C", "mmol/mol", "LAB", "lab-copy")
OTHER = MeasurementKey("p-copy-2", "SBP", "mm[Hg]", "KIS", "gp-copy")


def _rows(tag: str, n: int) -> list[MeasurementRow]:
    moment = dt.datetime(2025, 6, 1, 12, 0, 0, 123_456, tzinfo=dt.UTC)
    return [
        (
            KEY if i % 2 == 0 else OTHER,
            40.25 + i,
            unix_micros(moment - dt.timedelta(days=i, microseconds=i)),
            f"{tag}-{i}-é",
        )
        for i in range(n)
    ]


def _insert(engine: Engine, rows: list[MeasurementRow]) -> dict[int, StoredMeasurement]:
    with UnitOfWork(make_session_factory(engine)) as uow:
        taken = uow.repo.insert_measurement_rows(CARE_GROUP, HOLDER, STAMP, rows)
        uow.commit()
    return taken


def _stored(engine: Engine, tag: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT care_group_id, patient_id, code, value, unit, measured_at, "
                    "source_kind, source_org, source_record_id, ingested_at, holder_id "
                    "FROM measurements "
                    "WHERE source_record_id LIKE :tag ORDER BY id"
                ),
                {"tag": f"{tag}-%"},
            )
        ]


def _expected(rows: list[MeasurementRow]) -> list[tuple[object, ...]]:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return [
        (
            CARE_GROUP,
            key.patient_id,
            key.code,
            value,
            key.unit,
            epoch + dt.timedelta(microseconds=micros),
            key.source_kind,
            key.source_org,
            record,
            STAMP,
            HOLDER,
        )
        for key, value, micros, record in rows
    ]


def test_new_rows_are_copied_with_every_value_exact_and_in_order(engine: Engine) -> None:
    rows = _rows("new", 50)
    assert _insert(engine, rows) == {}
    assert _stored(engine, "new") == _expected(rows)


def test_rows_whose_source_key_exists_are_reported_and_the_others_stored(
    engine: Engine,
) -> None:
    rows = _rows("mixed", 40)
    assert _insert(engine, rows[10:20]) == {}
    taken = _insert(engine, rows)
    assert sorted(taken) == list(range(10, 20))
    for n, stored in taken.items():
        key, value, micros, _record = rows[n]
        assert (stored.patient_id, stored.code, stored.value, stored.measured_micros) == (
            key.patient_id,
            key.code,
            value,
            micros,
        )
        assert (stored.care_group_id, stored.holder_id, stored.ingested_at) == (
            CARE_GROUP,
            HOLDER,
            STAMP,
        )
    assert _stored(engine, "mixed") == _expected(rows[10:20] + rows[:10] + rows[20:])
    assert sorted(_insert(engine, rows)) == list(range(40))
    assert len(_stored(engine, "mixed")) == 40


def test_a_correction_replaces_the_value_and_keeps_the_old_one_as_a_revision(
    engine: Engine,
) -> None:
    rows = _rows("fix", 2)
    _insert(engine, rows)
    later = STAMP + dt.timedelta(days=1)
    key, value, micros, record = rows[0]
    with UnitOfWork(make_session_factory(engine)) as uow:
        taken = uow.repo.insert_measurement_rows(
            CARE_GROUP, HOLDER, later, [(key, value + 1, micros + 5, record)]
        )
        uow.repo.correct_measurements([Correction(taken[0], value + 1, micros + 5)], later)
        uow.commit()
    stored = _stored(engine, "fix")
    assert stored[0][3] == value + 1 and stored[0][9] == later
    assert stored[1] == _expected(rows)[1]
    with engine.connect() as conn:
        revisions = conn.execute(
            text(
                "SELECT measurement_id, value, measured_at, ingested_at, superseded_at "
                "FROM measurement_revisions WHERE measurement_id = :id"
            ),
            {"id": taken[0].id},
        ).all()
    assert [tuple(r) for r in revisions] == [
        (
            taken[0].id,
            value,
            dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros),
            STAMP,
            later,
        )
    ]

"""At most one active care relationship of a kind per patient and organisation, on real
PostgreSQL: concurrent creates cannot both win, the database itself refuses a second open
row, and the migration that brings the rule voids the duplicates that already exist."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from identity import demo, errors
from identity.main import deps_for
from identity.models import CareRelationship, RelationshipKind
from identity.use_cases import patients, relationships
from identity.use_cases.deps import Deps
from servicekit.db import make_engine
from servicekit.migrations import upgrade
from servicekit.principals import care_group_admin
from testkit.database import fresh_database

from .principals import GP

ADMIN = care_group_admin("cg-zuidoost", "rel-admin", client_id="test")
CONTENDERS = 8


@pytest.fixture(scope="module")
def region() -> Iterator[tuple[Deps, Engine]]:
    with fresh_database("identity_rel") as url:
        upgrade("identity.migrations", url)
        engine = make_engine(url, pool_size=CONTENDERS + 2)
        deps = deps_for(engine, b"pepper")
        demo.seed(deps)
        yield deps, engine
        engine.dispose()


def _new_patient(deps: Deps) -> str:
    bsn = next(
        f"{n:09d}"
        for n in range(uuid.uuid4().int % 800_000_000 + 100_000_000, 999_999_999)
        if sum(w * int(d) for w, d in zip((9, 8, 7, 6, 5, 4, 3, 2, -1), f"{n:09d}", strict=True))
        % 11
        == 0
    )
    return patients.register_patient(deps, GP, bsn).id


def _open_rows(engine: Engine, patient_id: str, organisation_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM care_relationships WHERE patient_id = :p"
                    " AND organisation_id = :o AND end_time IS NULL"
                ),
                {"p": patient_id, "o": organisation_id},
            ).scalar_one()
        )


def test_concurrent_identical_creates_leave_exactly_one_relationship(
    region: tuple[Deps, Engine],
) -> None:
    deps, engine = region
    patient_id = _new_patient(deps)
    start = threading.Barrier(CONTENDERS)
    created: list[CareRelationship] = []
    refused: list[errors.CareRelationshipExists] = []
    unexpected: list[BaseException] = []

    def create() -> None:
        start.wait()
        try:
            created.append(
                relationships.create_care_relationship(
                    deps,
                    ADMIN,
                    patient_id,
                    "hosp-catharina",
                    RelationshipKind.TREATING,
                    None,
                    None,
                )
            )
        except errors.CareRelationshipExists as exc:
            refused.append(exc)
        except BaseException as exc:
            unexpected.append(exc)

    threads = [threading.Thread(target=create) for _ in range(CONTENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not unexpected, unexpected
    assert len(created) == 1
    assert len(refused) == CONTENDERS - 1
    winner = f"patients/{patient_id}/careRelationships/{created[0].id}"
    assert {exc.metadata["care_relationship"] for exc in refused} == {winner}
    assert _open_rows(engine, patient_id, "hosp-catharina") == 1


def test_the_database_refuses_a_second_open_relationship_of_the_same_kind(
    region: tuple[Deps, Engine],
) -> None:
    deps, engine = region
    patient_id = _new_patient(deps)  # registered with an open coordinating gp-de-linde row
    insert = text(
        "INSERT INTO care_relationships (id, patient_id, organisation_id, kind, start_time,"
        " end_time, create_time) VALUES (:id, :p, 'gp-de-linde', :kind, now(), :end, now())"
    )

    def row(kind: str, end: dt.datetime | None) -> dict[str, object]:
        return {"id": uuid.uuid4().hex, "p": patient_id, "kind": kind, "end": end}

    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert, row("coordinating", None))
    # Another kind, or an ended one of the same kind, is allowed.
    with engine.begin() as conn:
        conn.execute(insert, row("treating", None))
        conn.execute(insert, row("coordinating", dt.datetime.now(dt.UTC) + dt.timedelta(days=1)))


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_the_migration_voids_duplicates_that_already_exist_and_keeps_the_first() -> None:
    with fresh_database("identity_mig4") as url:
        upgrade("identity.migrations", url, "0003")
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO organisations (id, display_name, type, care_group_id, version,"
                " create_time, update_time) VALUES ('gp-a', 'A', 'gp-practice', 'cg', 1, now(),"
                " now()), ('cg', 'CG', 'care-group', 'cg', 1, now(), now())"
            )
            conn.execute(
                "INSERT INTO patients (id, care_group_id, bsn_hash, facts_version, create_time,"
                " update_time) VALUES ('p1', 'cg', 'h1', 4, now(), now()),"
                " ('p2', 'cg', 'h2', 7, now(), now())"
            )
            conn.execute(
                "INSERT INTO care_relationships (id, patient_id, organisation_id, kind,"
                " start_time, end_time, create_time) VALUES"
                " ('later', 'p1', 'gp-a', 'coordinating', '2025-03-01Z', NULL, now()),"
                " ('first', 'p1', 'gp-a', 'coordinating', '2025-01-01Z', NULL, now()),"
                " ('other-kind', 'p1', 'gp-a', 'treating', '2025-02-01Z', NULL, now()),"
                " ('alone', 'p2', 'gp-a', 'coordinating', '2025-02-01Z', NULL, now())"
            )
        upgrade("identity.migrations", url)
        with psycopg.connect(_libpq(url)) as conn:
            rows: dict[str, bool] = dict(
                conn.execute(
                    "SELECT id, end_time IS NULL OR end_time > start_time FROM care_relationships"
                ).fetchall()
            )
            versions: dict[str, int] = dict(
                conn.execute("SELECT id, facts_version FROM patients").fetchall()
            )
        assert rows == {"first": True, "later": False, "other-kind": True, "alone": True}
        assert versions == {"p1": 5, "p2": 7}

"""``outcomes seed-demo`` on a fresh PostgreSQL database: the demo region, its contract
with the demo insurer and a computed report; running it again changes nothing."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from outcomes import demo
from outcomes.deps import Deps
from outcomes.models import Report, canonical_json
from outcomes.unit_of_work import UnitOfWork
from outcomes.use_cases import discrepancies, reports
from outcomes.use_cases.indicators import load_definitions
from servicekit.db import make_session_factory
from testkit.database import engine_on, migrated_database
from testkit.fakes import FakeIdentity


def test_the_demo_seeds_a_region_a_contract_and_a_report_once() -> None:
    with (
        migrated_database("outcomes_demo", "outcomes.migrations") as url,
        engine_on(url) as engine,
    ):
        _seed_twice(make_session_factory(engine))


def _seed_twice(sessions: sessionmaker[Session]) -> None:
    deps = Deps(uow=lambda: UnitOfWork(sessions), identity=FakeIdentity())
    load_definitions(deps)
    first = demo.seed(deps)
    second = demo.seed(deps)
    assert first["patients"] == demo.PATIENTS and first["measurements_added"] > 1000
    assert second["measurements_added"] == 0 and second["report"] == first["report"]
    with sessions() as session:
        kinds = {
            str(kind): int(count)
            for kind, count in session.execute(
                text("SELECT source_kind, COUNT(*) FROM measurements GROUP BY 1")
            )
        }
    with deps.uow() as uow:
        report = uow.repo.report(str(first["report"]).removeprefix("reports/"))
    assert {"KIS", "LAB", "HOSPITAL", "INSURER_CLAIMS"} <= set(kinds)
    assert report is not None and report.contract_id == demo.CONTRACT_ID
    assert any(c["suppression"] == "none" and c["practice"] == "" for c in report.cells)
    assert reports.verify_report(deps, demo.ADMIN, report.id).reproduced
    assert report.inputs["protection"] == "strata-v4"
    _an_earlier_rules_report_recomputes_under_its_rule(deps, report)
    # the two demo sources disagree for some patients
    found = discrepancies.source_discrepancies(
        deps, demo.ADMIN, demo.CONTRACT_ID, demo.PERIOD_START, demo.PERIOD_END
    )
    pairs = {(d.indicator, d.source_a, d.source_b) for d in found}
    assert ("DM2_HBA1C_AT_TARGET", "KIS", "LAB") in pairs
    assert all(d.compared is None or not 0 < d.compared < 10 for d in found)


def _an_earlier_rules_report_recomputes_under_its_rule(deps: Deps, report: Report) -> None:
    """A report stored under strata-v2 (before sums of hidden cells were protected) keeps
    recomputing to its own cells and hash."""
    inputs = {**report.inputs, "protection": "strata-v2"}
    with deps.uow() as uow:
        cells = reports.compute_cells(uow, inputs)
        older = Report(
            id=uuid.uuid4().hex,
            care_group_id=report.care_group_id,
            contract_id=report.contract_id,
            period_start=report.period_start,
            period_end=report.period_end,
            data_cutoff=report.data_cutoff,
            inputs_json=canonical_json(inputs),
            cells_json=canonical_json(cells),
            content_hash=reports.report_hash(inputs, cells),
            cell_count=len(cells),
            create_time=report.create_time,
        )
        uow.repo.add(older)
        uow.commit()
    assert reports.verify_report(deps, demo.ADMIN, older.id).reproduced

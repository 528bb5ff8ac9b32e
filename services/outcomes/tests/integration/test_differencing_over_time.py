"""The insurer's attack over time (rule strata-v4): a contract's reports recomputed at later
data cut-offs, after patients were enrolled and measured, on a generated region in
PostgreSQL (one region: the unit tests generate many without a database). The attacker
holds every report and subtracts: no count a cell publishes or implies, of one cell or
summed over cells of one line, is determined by two reports (exact rational arithmetic,
attacker.py, every relation between indicators) and differs between them by 1 to 9. Each report recomputes to its hash from its recorded inputs, which name the
reports it was compared with; the same reports protected under strata-v3 leak."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import Engine, text

from outcomes.deps import Deps
from outcomes.models import Programme, Report, Sex, SourceKind, Stratifier, canonical_json
from outcomes.repository import MeasurementTuple
from outcomes.suppression import lines_of
from outcomes.use_cases import enrolments
from outcomes.use_cases import reports as report_cases

from . import attacker, region
from .test_differencing_attacks import END, KINDS, START, _admin, _contract, _counts, _truth

SEEDS = [11]
STRATIFICATIONS = [
    [Stratifier.PRACTICE],
    [Stratifier.PRACTICE, Stratifier.AGE_BAND, Stratifier.SEX],
]
Truth = dict[tuple[str, attacker.Key, str], int]
Cells = list[dict[str, Any]]


def _later(deps: Deps, care_group: str, rng: random.Random, step: int) -> None:
    """Between two cut-offs: a few patients enrolled (with measurements), and first or new
    measurements for a few patients already there, received now."""
    stamp = dt.datetime.now(dt.UTC)
    rows: list[MeasurementTuple] = []
    with deps.uow() as uow:
        for n in range(rng.choice([1, 2, 3, 5])):
            patient = f"t-{step}-{n}"
            practice, agb = rng.choice(region.PRACTICES)
            programme = rng.choice(list(Programme))
            band = rng.choice(list(region.BANDS))
            lo, hi = region.BANDS[band]
            enrolments.store_enrolment(
                uow,
                care_group,
                enrolments.EnrolmentInput(
                    patient,
                    programme,
                    practice,
                    agb,
                    dt.datetime(2019, 3, 1, tzinfo=dt.UTC),
                    "",
                    rng.randint(lo, hi),
                    rng.choice([Sex.FEMALE, Sex.MALE]),
                ),
                stamp,
            )
            for code in region.CODES[programme]:
                if rng.random() < 0.6:
                    rows.append(_row(rng, care_group, patient, code, stamp, step))
        for _ in range(rng.choice([1, 2, 4])):
            patient = f"s-{rng.randint(1, 300):05d}"
            code = rng.choice(["HBA1C", "SBP", "FOOT_EXAM", "SPIROMETRY", "SMOKING_STATUS"])
            rows.append(_row(rng, care_group, patient, code, stamp, step))
        uow.repo.insert_measurements(rows)
        uow.commit()


def _row(
    rng: random.Random, care_group: str, patient: str, code: str, stamp: dt.datetime, step: int
) -> MeasurementTuple:
    value, unit = region._value(rng, code)
    when = dt.datetime(2025, 6, 1, tzinfo=dt.UTC) + dt.timedelta(days=rng.randint(0, 150))
    kind = rng.choice([SourceKind.LAB, SourceKind.KIS])
    org = "lab-x" if kind is SourceKind.LAB else "prac-a"
    record = f"{care_group}-{patient}-later-{step}-{rng.randrange(10**9)}"
    return (care_group, patient, code, value, unit, when, kind.value, org, record, stamp)


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed-{s}" for s in SEEDS])
def series(
    request: pytest.FixtureRequest, deps: Deps, engine: Engine
) -> tuple[str, list[tuple[list[Any], Truth]]]:
    """A generated region, a contract, and three rounds of its reports, with patients added
    and measured between the rounds: per round (reports, the hand-counted truth)."""
    seed: int = request.param
    care_group = f"cg-time-{seed}"
    rng = random.Random(seed)
    with deps.uow() as uow:
        region.build(uow, care_group, seed=seed, stamp=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
        uow.commit()
    with deps.uow() as uow:
        uow.session.execute(text("ANALYZE measurements"))
        uow.commit()
    contract = _contract(deps, care_group)
    rounds = []
    for step in range(3):
        if step:
            _later(deps, care_group, rng, step)
        made = [
            report_cases.compute_indicators(deps, _admin(care_group), contract, START, END, s)
            for s in STRATIFICATIONS
        ]
        rounds.append((made, _truth(engine, care_group)))
    return care_group, rounds


def _published(reports: list[Any]) -> dict[tuple[str, attacker.Key, str], dict[str, Any]]:
    return {
        (c["indicator"], (c["practice"], c["age_band"], c["sex"]), c["band"]): c
        for r in reports
        for c in (r.cells if hasattr(r, "cells") else r)
    }


def _spaces(cells: dict[tuple[str, attacker.Key, str], dict[str, Any]]) -> dict[str, Any]:
    """Per population: (the attacker's row space of what the cells publish, fine strata)."""
    out = {}
    for pop in sorted({attacker.population(i) for i, _k, _b in cells}):
        mine = {k: c for k, c in cells.items() if attacker.population(k[0]) == pop}
        fine = sorted({key for _i, key, _b in mine if all(key)})
        space = attacker.RowSpace()
        for (indicator, key, band), c in sorted(mine.items()):
            if c["suppression"] == "none":
                num = f"num:{band}" if band else "num"
                for quantity in ("den", "excl", num):
                    space.add(attacker.vector(indicator, key, quantity, fine))
        out[pop] = (space, fine)
    return out


_SPACES: dict[int, tuple[Any, dict[str, Any]]] = {}


def _spaces_of(cells: dict[tuple[str, attacker.Key, str], dict[str, Any]]) -> dict[str, Any]:
    """_spaces once per set of cells (each round is in two pairs), with a memo of what it
    determines; the cells are kept with it, so their id names them."""
    entry = _SPACES.get(id(cells))
    if entry is None or entry[0] is not cells:
        spaces: dict[str, Any] = {
            pop: (space, fine, {}) for pop, (space, fine) in _spaces(cells).items()
        }
        entry = _SPACES[id(cells)] = (cells, spaces)
    return entry[1]


def _leaks(
    a: dict[tuple[str, attacker.Key, str], dict[str, Any]],
    b: dict[tuple[str, attacker.Key, str], dict[str, Any]],
    truth_a: Truth,
    truth_b: Truth,
    first: bool = False,
) -> tuple[int, list[Any]]:
    """(small changes, those both reports determine) for every count of every cell and
    every sum of two or more cells of one line (``first``: stop at the first found)."""
    spaces_a, spaces_b = _spaces_of(a), _spaces_of(b)
    keys = sorted({k for _i, k, _b in a} | {k for _i, k, _b in b})
    groups: list[tuple[attacker.Key, ...]] = [(k,) for k in keys]
    for _parent, kids in lines_of(keys):
        for size in range(2, len(kids) + 1):
            groups += [
                tuple((k[0], k[1], k[2]) for k in s) for s in itertools.combinations(kids, size)
            ]
    units = sorted({(i, band) for i, _k, band in a} | {(i, band) for i, _k, band in b})
    changes, found = 0, []
    for indicator, band in units:
        pop = attacker.population(indicator)
        num = f"num:{band}" if band else "num"
        for count in _counts(KINDS.get(indicator, "proportion"), num):

            def total(truth: Truth, cells: tuple[attacker.Key, ...]) -> int:
                return sum(
                    c * truth.get((indicator, k, q), 0)  # noqa: B023
                    for k in cells
                    for q, c in count.items()  # noqa: B023
                )

            for cells in groups:
                delta = total(truth_b, cells) - total(truth_a, cells)
                if not 0 < abs(delta) < 10:
                    continue
                changes += 1
                known = []
                for spaces in (spaces_a, spaces_b):
                    space, fine, seen = spaces[pop]
                    signature = (indicator, cells, tuple(sorted(count.items())))
                    if signature not in seen:
                        v: attacker.Vector = defaultdict(int)
                        for k in cells:
                            for q, c in count.items():
                                for name, x in attacker.vector(indicator, k, q, fine).items():
                                    v[name] += c * x
                        v = {n: x for n, x in v.items() if x}
                        seen[signature] = not v or space.determines(v)
                    known.append(seen[signature])
                if all(known):
                    found.append((indicator, cells, band, count, delta))
                    if first:
                        return changes, found
    return changes, found


def test_no_small_change_between_the_contracts_reports_is_determined(
    series: tuple[str, list[tuple[list[Any], Truth]]],
) -> None:
    _cg, rounds = series
    changes = 0
    views = [(_published(made), truth) for made, truth in rounds]
    for (cells_a, truth_a), (cells_b, truth_b) in itertools.combinations(views, 2):
        n, found = _leaks(cells_a, cells_b, truth_a, truth_b)
        changes += n
        assert found == []
    assert changes > 0


def test_each_report_names_the_earlier_ones_and_recomputes_to_its_hash(
    series: tuple[str, list[tuple[list[Any], Truth]]], deps: Deps
) -> None:
    _cg, rounds = series
    made = [r for reports, _t in rounds for r in reports]
    for n, report in enumerate(made):
        inputs = report.inputs
        assert inputs["protection"] == "strata-v4"
        assert [h["report"] for h in inputs["history"]] == [r.id for r in made[:n]]
        with deps.uow() as uow:
            cells = report_cases.compute_cells(uow, inputs)
        assert report_cases.report_hash(inputs, cells) == report.content_hash


def test_the_rule_before_leaks_the_change_between_two_cut_offs(
    series: tuple[str, list[tuple[list[Any], Truth]]], deps: Deps
) -> None:
    """The later reports' own data protected under strata-v3 (each report on its own)."""
    _cg, rounds = series
    (made_a, truth_a), (made_b, truth_b) = rounds[0], rounds[1]
    with deps.uow() as uow:
        old_rule = [
            report_cases.compute_cells(uow, {**r.inputs, "protection": "strata-v3"}) for r in made_b
        ]
    _n, found = _leaks(_published(made_a), _published(old_rule), truth_a, truth_b, first=True)
    assert found


def test_a_strata_v3_report_still_recomputes_to_its_hash(
    series: tuple[str, list[tuple[list[Any], Truth]]], deps: Deps
) -> None:
    """A report stored under strata-v3 (no history in its inputs) recomputes under
    strata-v3, also after later reports of its contract."""
    care_group, rounds = series
    report = rounds[1][0][1]
    inputs = {k: v for k, v in report.inputs.items() if k != "history"}
    inputs["protection"] = "strata-v3"
    with deps.uow() as uow:
        cells = report_cases.compute_cells(uow, inputs)
        older = Report(
            id=uuid.uuid4().hex,
            care_group_id=report.care_group_id,
            contract_id=report.contract_id,
            period_start=report.period_start,
            period_end=report.period_end,
            data_cutoff=report.data_cutoff,
            inputs_json=canonical_json(inputs),
            cells_json=canonical_json(cells),
            content_hash=report_cases.report_hash(inputs, cells),
            cell_count=len(cells),
            create_time=report.create_time,
        )
        uow.repo.add(older)
        uow.commit()
    assert report_cases.verify_report(deps, _admin(care_group), older.id).reproduced

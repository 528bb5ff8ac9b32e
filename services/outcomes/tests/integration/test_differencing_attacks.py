"""The insurer's attack on a contract's reports (issue 11, point 8): solve the linear system
of everything published (every report of the contract, every indicator, stratum, margin and
band) together with the relations between indicators, and check exactly (rational
arithmetic, attacker.py) that no suppressed count from 1 to 9 is determined. On generated
regions of four practices whose strata hold 0 to 20 patients, many of 3 to 12."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import Engine, text

from outcomes import indicators
from outcomes.contract_terms import PRINCIPLES, ContractIndicatorInput, ContractInput
from outcomes.deps import Deps
from outcomes.models import SourceKind, Stratifier
from outcomes.suppression import lines_of
from outcomes.use_cases import contracts
from outcomes.use_cases import reports as report_cases
from servicekit.auth import Principal

from . import attacker, hand_sql, region

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
STRATIFICATIONS = [
    [Stratifier.PRACTICE],
    [Stratifier.PRACTICE, Stratifier.SEX],
    [Stratifier.PRACTICE, Stratifier.AGE_BAND],
    [Stratifier.AGE_BAND, Stratifier.SEX],
    [Stratifier.PRACTICE, Stratifier.AGE_BAND, Stratifier.SEX],
]
# Every indicator reads its codes from the same agreed sources, in the same order, so that
# every relation between indicators of a code holds exactly.
SOURCES = [SourceKind.LAB, SourceKind.KIS, SourceKind.HOSPITAL, SourceKind.PATIENT]
SEEDS = [5, 11, 23, 47, 71]
Cells = list[dict[str, Any]]


def _admin(care_group: str) -> Principal:
    return Principal(
        subject=f"admin-{care_group}",
        client_id="test",
        organisation=f"organisations/{care_group}",
        care_group=f"organisations/{care_group}",
        roles=frozenset({"care-group-admin"}),
    )


def _contract(deps: Deps, care_group: str) -> str:
    with deps.uow() as uow:
        codes = sorted(uow.repo.latest_definitions())
    data = ContractInput(
        display_name="attack",
        insurer_id="ins-attack",
        period_start=START,
        period_end=END,
        indicators=[ContractIndicatorInput(c, 0, SOURCES, 60, 50, "") for c in codes],
        financing={"model": "fee-for-service"},
        principles=dict.fromkeys(PRINCIPLES, "agreed"),
    )
    return contracts.create_contract(deps, _admin(care_group), f"attack-{care_group}", data).id


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed-{s}" for s in SEEDS])
def reports(request: pytest.FixtureRequest, deps: Deps) -> tuple[str, list[Cells]]:
    """A generated region, a contract over every seed indicator, and one report of the
    contract per stratification."""
    seed: int = request.param
    care_group = f"cg-attack-{seed}"
    with deps.uow() as uow:
        region.build(uow, care_group, seed=seed, stamp=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
        uow.commit()
    with deps.uow() as uow:
        uow.session.execute(text("ANALYZE measurements"))
        uow.commit()
    contract = _contract(deps, care_group)
    out = [
        report_cases.compute_indicators(deps, _admin(care_group), contract, START, END, s).cells
        for s in STRATIFICATIONS
    ]
    return care_group, out


def _truth(engine: Engine, care_group: str) -> dict[tuple[str, attacker.Key, str], int]:
    """Every count of every cell of the full cube, summed by hand from independent SQL
    (hand_sql.py): (indicator, key, quantity) -> count."""
    sources = [s.value for s in SOURCES]
    codes = [d.code for d in indicators.load_files()]
    queries = hand_sql.queries(care_group, dict.fromkeys(codes, sources))
    out: dict[tuple[str, attacker.Key, str], int] = defaultdict(int)
    with engine.connect() as conn:
        for code, query in queries.items():
            for practice, band, sex, label, den, excl, num in conn.execute(text(query)):
                s = (str(practice), str(band), str(sex))
                for key in _margins(s):
                    out[(code, key, "den")] += int(den)
                    out[(code, key, "excl")] += int(excl)
                    out[(code, key, f"num:{label}" if label else "num")] += int(num)
    return out


def _margins(s: attacker.Key) -> list[attacker.Key]:
    return [(p, a, x) for p in (s[0], "") for a in (s[1], "") for x in (s[2], "")]


def _counts(kind: str, num: str) -> list[dict[str, int]]:
    out = [{num: 1}, {"den": 1}, {"excl": 1}, {"den": 1, "excl": -1}]
    if kind != "rate":
        out += [{"den": 1, num: -1}, {"den": 1, "excl": -1, num: -1}]
    return out


KINDS = {"COPD_EXACERBATIONS": "rate", "DM2_HBA1C_BANDS": "bands", "PROM_PAM_LEVELS": "bands"}


def test_published_cells_hold_no_small_count_nor_small_complement(
    reports: tuple[str, list[Cells]],
) -> None:
    _cg, all_cells = reports
    states = {c["suppression"] for cells in all_cells for c in cells}
    assert {"none", "primary", "complementary"} <= states
    for c in (c for cells in all_cells for c in cells if c["suppression"] == "none"):
        num, den, excl = c["numerator"], c["denominator"], c["exclusions"]
        derived = [num, den, excl, den - excl]
        if c["indicator"] != "COPD_EXACERBATIONS":
            derived += [den - num, den - excl - num]
        assert not any(0 < v < 10 for v in derived), c


def test_a_key_is_never_published_in_one_report_and_suppressed_in_another(
    reports: tuple[str, list[Cells]],
) -> None:
    _cg, all_cells = reports
    seen: dict[tuple[str, str, attacker.Key], tuple[Any, ...]] = {}
    for c in (c for cells in all_cells for c in cells):
        k = (c["indicator"], c["band"], (c["practice"], c["age_band"], c["sex"]))
        shown = (c["suppression"], c["numerator"], c["denominator"], c["exclusions"])
        assert seen.setdefault(k, shown) == shown, k


def test_no_small_count_is_determined_by_everything_the_contract_publishes(
    reports: tuple[str, list[Cells]], engine: Engine
) -> None:
    care_group, all_cells = reports
    truth = _truth(engine, care_group)
    # Every report's cells are a subset of the fully stratified one (the test above); the
    # attacker takes the union of all of them anyway.
    cells = {
        (c["indicator"], (c["practice"], c["age_band"], c["sex"]), c["band"]): c
        for cells in all_cells
        for c in cells
    }
    strata: dict[str, set[attacker.Key]] = defaultdict(set)
    for indicator, key, _band in cells:
        if all(key):
            strata[attacker.population(indicator)].add(key)
    checked = small = 0
    for pop in sorted(strata):
        space = attacker.RowSpace()
        mine = {k: c for k, c in cells.items() if attacker.population(k[0]) == pop}
        fine = sorted(strata[pop])
        for (indicator, key, band), c in sorted(mine.items()):
            if c["suppression"] != "none":
                continue
            num = f"num:{band}" if band else "num"
            for quantity in ("den", "excl", num):
                space.add(attacker.vector(indicator, key, quantity, fine))
        for (indicator, key, band), c in sorted(mine.items()):
            if c["suppression"] == "none":
                continue
            num = f"num:{band}" if band else "num"
            values = {q: truth.get((indicator, key, q), 0) for q in ("den", "excl", num)}
            for count in _counts(KINDS.get(indicator, "proportion"), num):
                value = sum(coeff * values[q] for q, coeff in count.items())
                checked += 1
                if not 0 < value < 10:
                    continue
                small += 1
                v: attacker.Vector = {}
                for q, coeff in count.items():
                    for name, x in attacker.vector(indicator, key, q, fine).items():
                        v[name] = v.get(name, 0) + coeff * x
                v = {name: x for name, x in v.items() if x}
                assert v and not space.determines(v), (indicator, key, band, count, value)
    assert small > 200, (checked, small)


def test_no_small_sum_of_hidden_cells_of_a_line_is_determined(
    reports: tuple[str, list[Cells]], engine: Engine
) -> None:
    """The attacker adds up hidden cells of one line (e.g. every practice's cell of an age
    band) and subtracts them from the shown total: no such sum of two or more hidden cells,
    for any count a cell publishes or implies, is small and determined."""
    care_group, all_cells = reports
    truth = _truth(engine, care_group)
    cells = {
        (c["indicator"], (c["practice"], c["age_band"], c["sex"]), c["band"]): c
        for cells in all_cells
        for c in cells
    }
    sums = 0
    for pop in sorted({attacker.population(k[0]) for k in cells}):
        mine = {k: c for k, c in cells.items() if attacker.population(k[0]) == pop}
        fine = sorted({key for _i, key, _b in mine if all(key)})
        space = attacker.RowSpace()
        for (indicator, key, band), c in sorted(mine.items()):
            if c["suppression"] == "none":
                num = f"num:{band}" if band else "num"
                for quantity in ("den", "excl", num):
                    space.add(attacker.vector(indicator, key, quantity, fine))
        units = sorted({(i, b) for i, _k, b in mine})
        for _parent, line in lines_of({key for _i, key, _b in mine}):
            kids: list[attacker.Key] = [(k[0], k[1], k[2]) for k in line]
            for indicator, band in units:
                shut = [
                    k
                    for k in kids
                    if mine.get((indicator, k, band), {"suppression": "none"})["suppression"]
                    != "none"
                ]
                num = f"num:{band}" if band else "num"
                for size in range(2, len(shut) + 1):
                    for subset in itertools.combinations(shut, size):
                        for count in _counts(KINDS.get(indicator, "proportion"), num):
                            value = sum(
                                coeff * truth.get((indicator, k, q), 0)
                                for k in subset
                                for q, coeff in count.items()
                            )
                            if not 0 < value < 10:
                                continue
                            sums += 1
                            v: attacker.Vector = {}
                            for k in subset:
                                for q, coeff in count.items():
                                    for name, x in attacker.vector(indicator, k, q, fine).items():
                                        v[name] = v.get(name, 0) + coeff * x
                            v = {name: x for name, x in v.items() if x}
                            assert not space.determines(v), (indicator, subset, band, count)
    assert sums > 0

"""From per-stratum counts to report cells: margins, suppression, scores and intervals.

Suppression is always decided on the full cube (practice x age band x sex with every
margin), for all indicators of the report together (protection.py), and only then are the
cells of the requested stratifiers published. So the cells of any two reports over the same
data are both subsets of one protected table, and combining differently stratified reports
recovers nothing either.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from outcomes import stats
from outcomes.indicators import Definition
from outcomes.models import DEFAULT_SOURCE_PRIORITY
from outcomes.protection import RULES, IndicatorTable, Unit, protect_tables
from outcomes.protection_over_time import Earlier
from outcomes.suppression import Key

DEFAULT_SOURCES = tuple(s.value for s in DEFAULT_SOURCE_PRIORITY)

DIMS = ("practice", "age_band", "sex")


@dataclass(frozen=True)
class FineRow:
    practice: str
    age_band: str
    sex: str
    band: str
    den: int
    excl: int
    num: int


@dataclass
class Counts:
    den: int = 0
    excl: int = 0
    num: int = 0

    @property
    def eligible(self) -> int:
        return self.den - self.excl


def _subsets(key: Key) -> Iterable[Key]:
    for mask in itertools.product((False, True), repeat=len(key)):
        yield tuple("" if m else v for v, m in zip(key, mask, strict=True))


def strata(rows: Sequence[FineRow]) -> dict[Key, Counts]:
    """Counts per stratum (practice, age band, sex) with every margin; for band indicators
    ``num`` is the number of non-excluded patients with a value."""
    fine: dict[Key, Counts] = defaultdict(Counts)
    for r in rows:
        c = fine[(r.practice, r.age_band, r.sex)]
        c.den += r.den
        c.excl += r.excl
        c.num += r.num
    cube: dict[Key, Counts] = defaultdict(Counts)
    for key, c in fine.items():
        for sub in _subsets(key):
            t = cube[sub]
            t.den += c.den
            t.excl += c.excl
            t.num += c.num
    return dict(cube)


def band_counts(rows: Sequence[FineRow], labels: Sequence[str]) -> dict[Key, int]:
    """(practice, age band, sex, band) -> patients, every margin of the strata included."""
    out: dict[Key, int] = defaultdict(int)
    for r in rows:
        if not r.band:
            continue
        for sub in _subsets((r.practice, r.age_band, r.sex)):
            out[(*sub, r.band)] += r.num
    return dict(out)


def _round(value: float) -> float:
    return round(value, 6)


def _cell(
    definition: Definition,
    key: Key,
    band: str,
    counts: Counts,
    num: int,
    suppression: str,
) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "indicator": definition.code,
        "version": definition.version,
        "practice": key[0],
        "age_band": key[1],
        "sex": key[2],
        "band": band,
        "suppression": suppression,
        "numerator": None,
        "denominator": None,
        "exclusions": None,
        "score": None,
        "ci_low": None,
        "ci_high": None,
        "patient_years": None,
    }
    if suppression != "none":
        return cell
    eligible = counts.eligible
    cell.update(numerator=num, denominator=counts.den, exclusions=counts.excl)
    if definition.kind == "rate":
        years = eligible * definition.lookback_months / 12
        low, high = stats.poisson_rate(num, years)
        score = 100 * num / years if years else 0.0
        cell.update(
            patient_years=_round(years),
            score=_round(score),
            ci_low=_round(100 * low),
            ci_high=_round(100 * high),
        )
    else:
        low, high = stats.wilson(num, eligible)
        score = 100 * num / eligible if eligible else 0.0
        cell.update(score=_round(score), ci_low=_round(100 * low), ci_high=_round(100 * high))
    return cell


def published(key: Key, stratifiers: Iterable[str]) -> bool:
    wanted = set(stratifiers)
    return all(v == "" or dim in wanted for dim, v in zip(DIMS, key, strict=True))


def build_cells(
    results: Sequence[tuple[Definition, Sequence[FineRow]]],
    stratifiers: Sequence[str],
    sources: Mapping[str, Sequence[str]] | None = None,
    rule: str = RULES[-1],
    history: Sequence[Earlier] = (),
) -> list[dict[str, Any]]:
    """Every published cell of every indicator, suppressed where needed (protection.py), in
    a stable order. ``sources`` are each indicator's agreed sources in priority order; without
    them every indicator is taken to read the same sources (the most related, so the most
    protective, assumption). ``history``: what the earlier reports of the same contract
    published (rule strata-v4 compares with them)."""
    tables = []
    cubes = []
    for d, rows in results:
        cube = strata(rows)
        cubes.append(cube)
        tables.append(
            IndicatorTable(
                definition=d,
                sources=tuple(sources[d.code] if sources else DEFAULT_SOURCES),
                den={k: c.den for k, c in cube.items()},
                excl={k: c.excl for k, c in cube.items()},
                num={k: c.num for k, c in cube.items()},
                bands=band_counts(rows, d.band_labels) if d.kind == "bands" else {},
            )
        )
    primary, complementary = protect_tables(tables, rule, history)

    def status(unit: Unit) -> str:
        return (
            "primary" if unit in primary else "complementary" if unit in complementary else "none"
        )

    cells: list[dict[str, Any]] = []
    for (d, _rows), cube, table in zip(results, cubes, tables, strict=True):
        for key in sorted(cube):
            if not published(key, stratifiers):
                continue
            for label in table.labels():
                num = table.value(key, f"num:{label}" if label else "num")
                cells.append(_cell(d, key, label, cube[key], num, status((d.code, key, label))))
    cells.sort(key=lambda c: (c["indicator"], c["practice"], c["age_band"], c["sex"], c["band"]))
    return cells

"""From per-stratum counts to report cells: margins, suppression, scores and intervals.

Suppression is always decided on the full cube (practice x age band x sex with every
margin), with one shared pattern for all indicators over the same population, and only
then are the cells of the requested stratifiers published. So the cells of any two reports
over the same data are both subsets of one protected table, and combining differently
stratified reports recovers nothing either.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from outcomes import stats
from outcomes.indicators import Definition
from outcomes.models import canonical_json
from outcomes.suppression import Key, is_small, protect

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


def _level(key: Key) -> int:
    return sum(1 for v in key if v == "")


def _small(cube: dict[Key, Counts], *measures: str) -> set[Key]:
    return {key for key, c in cube.items() if any(is_small(getattr(c, m)) for m in measures)}


def _protect_cube(cube: dict[Key, Counts], primary: set[Key]) -> set[Key]:
    first, extra = protect(cube, primary, cost=lambda k: (_level(k), cube[k].den))
    return first | extra


@dataclass(frozen=True)
class Pattern:
    primary: frozenset[Key]
    hidden: frozenset[Key]

    def status(self, key: Key) -> str:
        if key in self.primary:
            return "primary"
        return "complementary" if key in self.hidden else "none"


def patterns(cubes: Sequence[tuple[Definition, dict[Key, Counts]]]) -> list[Pattern]:
    """One pattern per indicator, layered so that a value two indicators share is hidden in
    the same cells of both: denominators per population, exclusions per population and
    exclusion rules, numerators per indicator. Each layer starts from the one below it and
    is protected against subtraction on its own."""
    den_layer: dict[str, set[Key]] = {}
    excl_layer: dict[str, set[Key]] = {}
    excl_primary: dict[str, set[Key]] = {}
    out = []
    for d, cube in cubes:
        pop = d.population_key
        if pop not in den_layer:
            den_layer[pop] = _protect_cube(cube, _small(cube, "den"))
        ex = pop + "|" + canonical_json(d.exclusions)
        if ex not in excl_layer:
            excl_primary[ex] = _small(cube, "den", "excl", "eligible")
            excl_layer[ex] = _protect_cube(cube, den_layer[pop] | excl_primary[ex])
        small = excl_primary[ex] | (_small(cube, "num") if d.kind != "bands" else set())
        hidden = _protect_cube(cube, excl_layer[ex] | small)
        out.append(Pattern(frozenset(small), frozenset(hidden)))
    return out


def band_pattern(
    labels: Sequence[str],
    cube: dict[Key, Counts],
    bands: dict[Key, int],
    hidden_strata: set[Key],
) -> tuple[set[Key], set[Key]]:
    keys: set[Key] = set()
    primary: set[Key] = set()
    forbidden: set[Key] = set()
    for stratum in cube:
        margin = (*stratum, "")
        keys.add(margin)
        if stratum in hidden_strata:
            primary.add(margin)
        else:
            forbidden.add(margin)  # known: denominator minus exclusions is published
        for label in labels:
            k = (*stratum, label)
            keys.add(k)
            if stratum in hidden_strata or is_small(bands.get(k, 0)):
                primary.add(k)
    return protect(
        keys, primary, cost=lambda k: (_level(k[:3]), bands.get(k, 0)), forbidden=forbidden
    )


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
    results: Sequence[tuple[Definition, Sequence[FineRow]]], stratifiers: Sequence[str]
) -> list[dict[str, Any]]:
    """Every published cell of every indicator, suppressed where needed, in a stable order."""
    cubes = [(d, strata(rows)) for d, rows in results]
    cells: list[dict[str, Any]] = []
    for (d, rows), (_d, cube), pattern in zip(results, cubes, patterns(cubes), strict=True):
        if d.kind == "bands":
            labels = d.band_labels
            bands = band_counts(rows, labels)
            b_first, b_extra = band_pattern(labels, cube, bands, set(pattern.hidden))
            for key in sorted(cube):
                if not published(key, stratifiers):
                    continue
                for label in labels:
                    bk = (*key, label)
                    s = pattern.status(key)
                    if s == "none":
                        s = (
                            "primary"
                            if bk in b_first
                            else "complementary"
                            if bk in b_extra
                            else "none"
                        )
                    cells.append(_cell(d, key, label, cube[key], bands.get(bk, 0), s))
        else:
            for key in sorted(cube):
                if published(key, stratifiers):
                    c = cube[key]
                    cells.append(_cell(d, key, "", c, c.num, pattern.status(key)))
    cells.sort(key=lambda c: (c["indicator"], c["practice"], c["age_band"], c["sex"], c["band"]))
    return cells

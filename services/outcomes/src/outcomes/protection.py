"""Small-cell protection of a whole report: every indicator, stratum, margin and band at
once, against everything an attacker can combine.

A report cell (a *unit*: indicator, stratum key, band) publishes counts: its denominator,
exclusions and numerator. The attacker sees every published cell of every report of the
same data (suppression is decided on the full cube, so all of them are subsets of one
table) and knows the linear relations between the counts:

- **margins**: every count of a margin is the sum of the counts one level finer along any
  one of its ``""`` dimensions (suppression.lines_of), for every indicator and band;
- **between indicators** (relations.py), in every stratum: the same denominator for every
  indicator of a population, exclusions of one indicator equal to the denominator minus
  another's numerator, a band equal to another indicator's numerator, the bands summing to
  the denominator minus the exclusions, a count that is zero by definition (the numerator of
  an indicator whose age limit excludes the whole band).

**The rule.** A count is *small* when it is 1 to 9. A cell is small (primary suppression)
when any of its counts, or any count a reader derives from the cell alone, is small: the
numerator, denominator and exclusions, the denominator minus the exclusions (the base of the
rate), the denominator minus the numerator and the base minus the numerator (the complement:
"30 measured of 35" says 5 were not). A count of 0 needs no protection.

**Strata, not cells.** Because every indicator of a population shares the stratum's
patients, a stratum (a key of the cube) is published or suppressed for all indicators of
the population at once: a key is primary when any cell of it is small. Then the key table
(practice x age band x sex with every margin) is protected exactly against subtraction
(suppression.protect: no primary key is determined by any combination of lines). That
suffices against every relation between indicators too: with whole strata hidden, the
changes an attacker cannot rule out are per stratum any vector of the stratum's local space
(the counts of patient types; relations.py), and when the strata of a population have at
most two distinct local spaces (the seed indicators: DM2 with its age limit at 70, and one
space for every other population), a basis adapted to both splits every such change into
independent one-number changes of the key table, each confined to the strata whose space
holds its basis vector. So a primary key that no change of the key table can pin down,
neither over all hidden strata nor over the hidden strata of each local space alone, hides
every small count it has. The second part is checked for each local space ("age class")
with the strata of the other classes taken as published, and suppression grows until no
primary key is determined in any of these problems.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from outcomes.indicators import AGE_BANDS, Definition, parse
from outcomes.relations import local_relations
from outcomes.suppression import THRESHOLD, Key, determined, lines_of, protect

Unit = tuple[str, Key, str]  # (indicator, stratum key, band label or "")


def small(count: int) -> bool:
    return 0 < count < THRESHOLD


@dataclass(frozen=True)
class IndicatorTable:
    """One indicator's counts over the full cube: per stratum key (with every margin) its
    denominator, exclusions and numerator; for a band indicator the numerator per band."""

    definition: Definition
    sources: tuple[str, ...]
    den: Mapping[Key, int]
    excl: Mapping[Key, int]
    num: Mapping[Key, int]  # proportion and rate indicators
    bands: Mapping[Key, int]  # band indicators: (*key, label) -> count

    def labels(self) -> list[str]:
        return self.definition.band_labels if self.definition.kind == "bands" else [""]

    def value(self, key: Key, name: str) -> int:
        if name == "den":
            return int(self.den[key])
        if name == "excl":
            return int(self.excl[key])
        if name == "num":
            return int(self.num[key])
        return int(self.bands.get((*key, name.removeprefix("num:")), 0))

    def quantities(self, key: Key, label: str) -> list[str]:
        return ["den", "excl", f"num:{label}" if label else "num"]


def _age_range(definition: Definition, band: str) -> tuple[int, int] | None:
    for label, low, high in AGE_BANDS:
        if label == band:
            pop = definition.population
            lo, hi = max(low, int(pop["min_age"])), min(high, int(pop["max_age"]))
            return (lo, hi) if lo <= hi else None
    return None


def _counts(table: IndicatorTable, key: Key, label: str) -> list[dict[str, int]]:
    """The counts a reader derives from one cell, as vectors over its quantities."""
    num = f"num:{label}" if label else "num"
    out = [{num: 1}, {"den": 1}, {"excl": 1}, {"den": 1, "excl": -1}]
    if table.definition.kind != "rate":
        out += [{"den": 1, num: -1}, {"den": 1, "excl": -1, num: -1}]
    return out


class _Population:
    """The protection problem of the indicators of one population."""

    def __init__(self, tables: Sequence[IndicatorTable]) -> None:
        self.tables = {t.definition.code: t for t in tables}
        first = next(iter(self.tables.values()))
        self.den = first.den
        self.keys = sorted(first.den)
        self.units = [
            (code, key, label)
            for code, t in self.tables.items()
            for key in self.keys
            for label in t.labels()
        ]
        self.lines = lines_of(self.keys)
        self.classes = self._classes(first.definition)
        self.covers: dict[Key, set[int]] = {k: set() for k in self.keys}
        for stratum, c in self.classes.items():
            for k in _margins(stratum):
                if k in self.covers:
                    self.covers[k].add(c)

    def _classes(self, definition: Definition) -> dict[Key, int]:
        """Fine key -> its age class: strata whose counts obey the same relations (kept,
        per class, in ``self.relations``)."""
        plan = [(t.definition, t.sources) for t in self.tables.values()]
        signatures: dict[str, int] = {}
        self.relations: list[list[dict[str, int]]] = []
        out = {}
        for key in self.keys:
            if not all(key):
                continue
            ages = _age_range(definition, key[1])
            relations = local_relations(plan, ages) if ages else []
            signature = repr(sorted(sorted(r.items()) for r in relations))
            if signature not in signatures:
                signatures[signature] = len(signatures)
                self.relations.append(relations)
            out[key] = signatures[signature]
        return out

    def _needs(self, first: set[Unit]) -> dict[Key, set[int | None]]:
        """Per primary key, the problems that must leave it undetermined: None for the one
        over all strata, a class for the one over that class's strata. A small count that is
        not zero on the change common to all classes (outside the span of all classes'
        relations) needs the first; one that is zero there needs the problem of each class
        it is not zero on (outside the span of that class's relations)."""
        every = [r for relations in self.relations for r in relations]
        spans: dict[tuple[Any, ...], bool] = {}

        def in_span(named: dict[str, int], c: int | None) -> bool:
            signature = (c, tuple(sorted(named.items())))
            if signature not in spans:
                spans[signature] = _in_span(named, every if c is None else self.relations[c])
            return spans[signature]

        needs: dict[Key, set[int | None]] = defaultdict(set)
        for code, key, label in sorted(first):
            t = self.tables[code]
            values = {n: t.value(key, n) for n in t.quantities(key, label)}
            for vector in _counts(t, key, label):
                if not small(sum(c * values[n] for n, c in vector.items())):
                    continue
                named = {f"{code}#{n}": c for n, c in vector.items()}
                if len(self.relations) <= 1 or not in_span(named, None):
                    needs[key].add(None)
                    continue
                for c in range(len(self.relations)):
                    if c in self.covers[key] and not in_span(named, c):
                        needs[key].add(c)
        return needs

    def cost(self, key: Key) -> tuple[float, ...]:
        """Cheapest first: the finest keys, then the smallest."""
        return (sum(1 for v in key if v == ""), self.den[key])

    def primary(self) -> set[Unit]:
        out: set[Unit] = set()
        for code, key, label in self.units:
            t = self.tables[code]
            values = {n: t.value(key, n) for n in t.quantities(key, label)}
            if any(
                small(sum(c * values[n] for n, c in vector.items()))
                for vector in _counts(t, key, label)
            ):
                out.add((code, key, label))
        return out

    def protect(self) -> tuple[set[Unit], set[Unit]]:
        first = self.primary()
        needs = self._needs(first)
        everywhere = {k for k, problems in needs.items() if None in problems}
        chosen, extra = protect(self.keys, everywhere, cost=self.cost)
        hidden = self._per_class(needs, {k for _c, k, _l in first} | chosen | extra)
        return first, {u for u in self.units if u[1] in hidden} - first

    def _per_class(self, needs: dict[Key, set[int | None]], hidden: set[Key]) -> set[Key]:
        """Grows ``hidden`` until no primary key is determined in a problem it needs: over
        all strata, or over the strata of one age class with the others taken as published."""
        problems: list[tuple[set[Key], set[Key]]] = [
            (set(), {k for k, p in needs.items() if None in p})
        ]
        for c in range(len(self.relations)):
            fixed = {k for k, cl in self.classes.items() if cl != c}
            problems.append((fixed, {k for k, p in needs.items() if c in p}))
        hidden = set(hidden)
        while True:
            exposed = added = False
            for fixed, relevant in problems:
                if not relevant:
                    continue
                for key in sorted(determined(hidden - fixed, self.lines) & relevant):
                    exposed = True
                    choice = self._neighbour(key, hidden, fixed)
                    if choice is not None:
                        hidden.add(choice)
                        added = True
            if not exposed:
                return hidden
            if not added:
                raise ValueError("a small count cannot be protected")

    def _neighbour(self, key: Key, hidden: set[Key], fixed: set[Key]) -> Key | None:
        """The cheapest published key on a line through ``key`` (or, when all of those are
        hidden, through the hidden keys it reaches), that the problem leaves free."""
        frontier, seen = {key}, {key}
        while frontier:
            options = set()
            reached = set()
            for parent, kids in self.lines:
                members = (parent, *kids)
                if not frontier & set(members):
                    continue
                for k in members:
                    if k in hidden:
                        reached.add(k)
                    elif k not in fixed:
                        options.add(k)
            if options:
                return min(options, key=lambda k: (self.cost(k), k))
            frontier = reached - seen
            seen |= reached
        return None


def _in_span(vector: Mapping[str, int], rows: Sequence[Mapping[str, int]]) -> bool:
    """Whether ``vector`` is a rational combination of ``rows`` (exact elimination)."""
    pivots: dict[str, dict[str, Fraction]] = {}

    def reduce(row: dict[str, Fraction]) -> dict[str, Fraction]:
        """Subtracts pivot rows until no pivot column is left in ``row``."""
        while pending := [n for n in row if n in pivots]:
            name = min(pending)
            factor = row[name]
            for n, v in pivots[name].items():
                nv = row.get(n, Fraction(0)) - factor * v
                if nv:
                    row[n] = nv
                else:
                    row.pop(n, None)
        return row

    for r in rows:
        row = reduce({n: Fraction(v) for n, v in r.items() if v})
        if row:
            name = min(row)
            pivots[name] = {n: v / row[name] for n, v in row.items()}
    return not reduce({n: Fraction(v) for n, v in vector.items() if v})


def _margins(stratum: Key) -> list[Key]:
    """The stratum and every margin above it."""
    return [
        tuple("" if hide else v for v, hide in zip(stratum, mask, strict=True))
        for mask in itertools.product((False, True), repeat=len(stratum))
    ]


def protect_tables(tables: Sequence[IndicatorTable]) -> tuple[set[Unit], set[Unit]]:
    """(primary, complementary) suppressed cells of every indicator (see the module). The
    decision depends only on the tables, so it is remembered for the last few inputs: the
    reports of one contract over the same data, stratified differently, decide once."""
    populations: dict[str, list[IndicatorTable]] = defaultdict(list)
    for t in tables:
        populations[t.definition.population_key].append(t)
    first: set[Unit] = set()
    extra: set[Unit] = set()
    for group in populations.values():
        p, e = _protected(tuple(_frozen(t) for t in group))
        first |= p
        extra |= e
    return first, extra


Frozen = tuple[str, tuple[str, ...], tuple[tuple[Key, int, int, int], ...], tuple[Any, ...]]


def _frozen(t: IndicatorTable) -> Frozen:
    return (
        t.definition.canonical,
        t.sources,
        tuple(sorted((k, t.den[k], t.excl[k], t.num.get(k, 0)) for k in t.den)),
        tuple(sorted(t.bands.items())),
    )


@functools.lru_cache(maxsize=16)
def _protected(group: tuple[Frozen, ...]) -> tuple[frozenset[Unit], frozenset[Unit]]:
    tables = []
    for raw, sources, counts, bands in group:
        tables.append(
            IndicatorTable(
                definition=parse(json.loads(raw)),
                sources=sources,
                den={k: d for k, d, _e, _n in counts},
                excl={k: e for k, _d, e, _n in counts},
                num={k: n for k, _d, _e, n in counts},
                bands=dict(bands),
            )
        )
    first, extra = _Population(tables).protect()
    return frozenset(first), frozenset(extra)

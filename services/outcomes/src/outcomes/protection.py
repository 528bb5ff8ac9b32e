"""Small-cell protection of a whole report: every indicator, stratum, margin and band at
once, against everything an attacker can combine from this report (rules strata-v2 and
strata-v3); the comparison with earlier reports of the contract that rule strata-v4 adds is
in protection_over_time.py.

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

**Strata of groups, not cells.** Indicators that read a code in common (or both exclude
by age) form a *group*; groups of a population share only the stratum's patients, the
denominator. A stratum (a key of the cube) is published or suppressed for a whole group at
once, and a key whose denominator must be hidden is hidden for every group. Why that is
exact: in a stratum, the counts of a group are a vector of its *local space* (relations.py;
the counts of patient types), and when the group has a change every age class allows that
adds one patient (``_Space.null_vector``), every change the attacker cannot rule out splits
into a change of the denominators alone (one number per key: the denominator table) plus
independent changes of each group's own counts with the denominator fixed. Within a group,
when its strata have at most two distinct local spaces (the seed indicators: DM2's HbA1c
group with its age limit at 70, and one space for every other group), a basis adapted to
both splits those changes further into one-number changes of the group's key table, each
confined to the strata whose space holds its basis vector. So each small count is protected
by one of: the group's key table over all its hidden strata (a count that changes with the
group's own counts), the group's key table over the hidden strata of one age class with the
others taken as published (a count that changes only there), or the denominator table (a
count that changes only with the denominator); each table is protected exactly against
subtraction (suppression.protect and suppression.determined), and suppression grows until
no small count is determined in the problem it needs. A group without such a common change
is protected with its whole population as one group.

**Sums of hidden cells** (rule strata-v3; strata-v2 reports recompute without it). An
attacker who adds up hidden cells of a line and subtracts them from its shown total learns
their sum. Hidden counts are 0, small, or at least 10, so such a sum is small only through a
small cell; after each group's problems are solved, every line whose total is shown (or
follows from the shown keys) has its hidden keys that do not follow from the shown ones
checked for every count of every indicator of the group (the denominator over the keys
every group hides), and the cheapest shown key of the line that makes every sum not small
is hidden too (else the total, else a key on its lines), until none is left. Sums of hidden
cells on no common line are not checked.

**Reports over time** (rule strata-v4; protection_over_time.py): no count known in this
report and in an earlier one of the contract differs by 1 to 9; a count that does is a
primary of this report, protected like a small count in the problems it needs.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from outcomes.indicators import AGE_BANDS, Definition, parse
from outcomes.protection_over_time import (
    Earlier,
    EarlierKnowledge,
    changes_exposed,
    earlier_knowledge,
    same_data,
)
from outcomes.relations import left_null_space, local_relations
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

    def derived(self, key: Key, label: str) -> list[dict[str, int]]:
        """The counts a reader derives from one cell, as vectors over its quantities."""
        num = f"num:{label}" if label else "num"
        out = [{num: 1}, {"den": 1}, {"excl": 1}, {"den": 1, "excl": -1}]
        if self.definition.kind != "rate":
            out += [{"den": 1, num: -1}, {"den": 1, "excl": -1, num: -1}]
        return out


def _age_range(definition: Definition, band: str) -> tuple[int, int] | None:
    for label, low, high in AGE_BANDS:
        if label == band:
            pop = definition.population
            lo, hi = max(low, int(pop["min_age"])), min(high, int(pop["max_age"]))
            return (lo, hi) if lo <= hi else None
    return None


class _Space:
    """Indicators whose relations are modelled together (a group of a population, or the
    whole population), their strata's age classes and the relations of each class."""

    def __init__(self, tables: Sequence[IndicatorTable], keys: Sequence[Key]) -> None:
        self.codes = [t.definition.code for t in tables]
        plan = [(t.definition, t.sources) for t in tables]
        definition = tables[0].definition
        signatures: dict[str, int] = {}
        self.relations: list[list[dict[str, int]]] = []
        self.classes: dict[Key, int] = {}
        for key in keys:
            if not all(key):
                continue
            ages = _age_range(definition, key[1])
            relations = local_relations(plan, ages) if ages else []
            signature = repr(sorted(sorted(r.items()) for r in relations))
            if signature not in signatures:
                signatures[signature] = len(signatures)
                self.relations.append(relations)
            self.classes[key] = signatures[signature]
        self.covers: dict[Key, set[int]] = {k: set() for k in keys}
        for stratum, c in self.classes.items():
            for k in _margins(stratum):
                if k in self.covers:
                    self.covers[k].add(c)
        self.every = [r for relations in self.relations for r in relations]
        self.den = [f"{code}#den" for code in self.codes]
        self._spans: dict[tuple[Any, ...], bool] = {}

    def null_vector(self) -> dict[str, Fraction] | None:
        """A change of the group's counts that every age class allows and that moves the
        denominator by one (adding one patient of the same type in every class), if any."""
        names = sorted({n for r in self.every for n in r} | set(self.den))
        rows = [[r.get(n, 0) for n in names] for r in self.every]
        basis = left_null_space([list(col) for col in zip(*rows, strict=True)]) if rows else []
        index = names.index(self.den[0])
        for vector in basis:
            if vector[index]:
                return {n: Fraction(v, vector[index]) for n, v in zip(names, vector, strict=True)}
        return None if rows else {n: Fraction(1) for n in self.den}

    def in_span(self, named: dict[str, int], c: int | None, with_den: bool) -> bool:
        signature = (c, with_den, tuple(sorted(named.items())))
        if signature not in self._spans:
            rows: list[Mapping[str, int]] = list(self.every if c is None else self.relations[c])
            if with_den:
                rows.append({self.den[0]: 1})
            self._spans[signature] = _in_span(named, rows)
        return self._spans[signature]

    def needs(self, named: dict[str, int], key: Key, with_den: bool) -> set[int | None]:
        """The problems a small count needs to leave its key undetermined: None for the one
        over all strata, a class for the one over that class's strata alone; none when the
        count is zero on every change of the group's own counts (``with_den``: with the
        denominator fixed). A count not zero on the change every class allows needs the
        first; one zero there needs the problem of each class it is not zero on."""
        if not self.in_span(named, None, with_den):
            return {None}
        if len(self.relations) <= 1:
            return set()
        return {
            c
            for c in range(len(self.relations))
            if c in self.covers[key] and not self.in_span(named, c, with_den)
        }


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

    def groups(self) -> list[list[IndicatorTable]]:
        """Indicators that read a code in common, or both exclude by age, in one group."""
        tables = list(self.tables.values())
        parent = list(range(len(tables)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        def aged(t: IndicatorTable) -> bool:
            return any(e["rule"] != "not_measured" for e in t.definition.exclusions)

        for i, j in itertools.combinations(range(len(tables)), 2):
            a, b = tables[i].definition, tables[j].definition
            if set(a.codes()) & set(b.codes()) or (aged(tables[i]) and aged(tables[j])):
                parent[find(i)] = find(j)
        out: dict[int, list[IndicatorTable]] = defaultdict(list)
        for i, t in enumerate(tables):
            out[find(i)].append(t)
        return list(out.values())

    def cost(self, key: Key) -> tuple[float, ...]:
        """Cheapest first: the finest keys, then the smallest."""
        return (sum(1 for v in key if v == ""), self.den[key])

    def small_counts(self) -> Iterator[tuple[Unit, dict[str, int]]]:
        """Every small count of every cell, as a vector over ``"<code>#<quantity>"``."""
        for code, key, label in self.units:
            t = self.tables[code]
            values = {n: t.value(key, n) for n in t.quantities(key, label)}
            for vector in t.derived(key, label):
                if small(sum(c * values[n] for n, c in vector.items())):
                    yield (code, key, label), {f"{code}#{n}": c for n, c in vector.items()}

    def protect(
        self, sums: bool = False, history: Sequence[Earlier] = ()
    ) -> tuple[set[Unit], set[Unit]]:
        """Per group of indicators, the keys to hide: those of the denominator table (for
        every group), and those of the group's own problems; a whole population as one
        group when a group has no change of one patient that every age class allows.
        With ``sums`` (rule strata-v3) also no small sum of hidden cells of a line; with a
        ``history`` (rule strata-v4) also no small change against an earlier report."""
        den_seed: set[Key] = set()
        changed: dict[Unit, list[dict[str, int]]] = {}
        known: list[EarlierKnowledge] = []
        while True:
            first, hidden, per_space = self._protect(sums, den_seed, changed)
            if history and not known:
                known = earlier_knowledge(history, self.tables, self.keys, self._spaces)
            more_den: set[Key] = set()
            if sums:
                # A denominator is known where any group publishes it: the hidden part of a
                # line is the keys every group hides.
                everywhere = set.intersection(*per_space) if per_space else set()
                more_den = self._sums_exposed(everywhere, [], den_only=True) - den_seed
            more_changed = (
                changes_exposed(self, self._spaces, per_space, known, changed) if known else {}
            )
            if not more_den and not more_changed:
                return first, hidden - first
            den_seed |= more_den
            for unit, vectors in more_changed.items():
                changed.setdefault(unit, []).extend(vectors)

    def _protect(
        self,
        sums: bool,
        den_seed: set[Key],
        changed: Mapping[Unit, list[dict[str, int]]] | None = None,
    ) -> tuple[set[Unit], set[Unit], list[set[Key]]]:
        if not hasattr(self, "_spaces"):
            # The groups, their classes and the spans they have tested, kept for the
            # rounds of one protection (strata-v3's sums, strata-v4's changes).
            spaces = [_Space(g, self.keys) for g in self.groups()]
            nulls = [space.null_vector() for space in spaces]
            if len(spaces) > 1 and any(n is None for n in nulls):
                spaces, nulls = [_Space(list(self.tables.values()), self.keys)], [None]
            self._spaces, self._nulls = spaces, nulls
        spaces, nulls = self._spaces, self._nulls
        space_of = {code: s for s in spaces for code in s.codes}
        first: set[Unit] = set()
        den_needs: set[Key] = set()
        needs: dict[int, dict[Key, set[int | None]]] = defaultdict(lambda: defaultdict(set))
        counts = list(self.small_counts())
        for unit, vectors in (changed or {}).items():
            code = unit[0]
            counts += [(unit, {f"{code}#{n}": c for n, c in v.items()}) for v in vectors]
        for unit, named in counts:
            first.add(unit)
            n = spaces.index(space_of[unit[0]])
            # A count that a change of the group's own counts (not its denominator) moves is
            # protected by the group's problems; one that only the denominator moves, by
            # the denominator's table (hidden for every group).
            own = spaces[n].needs(named, unit[1], with_den=nulls[n] is not None)
            if own:
                needs[n][unit[1]] |= own
            else:
                den_needs.add(unit[1])
        chosen, extra = protect(self.keys, den_needs | den_seed, cost=self.cost)
        den_hidden = chosen | extra
        hidden: set[Unit] = set()
        per_space: list[set[Key]] = []
        for n, space in enumerate(spaces):
            primary = {k for code, k, _l in first if code in space.codes}
            everywhere = {k for k, p in needs[n].items() if None in p}
            start, more = protect(self.keys, everywhere | den_hidden, cost=self.cost)
            keys = self._per_class(space, needs[n], primary | start | more)
            while sums and (grow := self._sums_exposed(keys, space.codes)):
                keys = self._per_class(space, needs[n], keys | grow)
            per_space.append(keys)
            hidden |= {u for u in self.units if u[0] in space.codes and u[1] in keys}
        return first, hidden, per_space

    def _small_sum(self, codes: Sequence[str], keys: Sequence[Key], den_only: bool) -> bool:
        """Whether a count a cell publishes or implies, summed over ``keys``, is small."""
        if den_only:
            return small(sum(self.den[k] for k in keys))
        for code in codes:
            t = self.tables[code]
            for label in t.labels():
                for vector in t.derived(keys[0], label):
                    if small(sum(c * t.value(k, n) for k in keys for n, c in vector.items())):
                        return True
        return False

    def _sums_exposed(
        self, hidden: set[Key], codes: Sequence[str], den_only: bool = False
    ) -> set[Key]:
        """Keys to hide so that no line whose total is shown has hidden cells whose counts
        add up to a small count (the total minus the shown cells): per such line the
        cheapest shown cell that makes every sum not small, else the line's total."""
        added: set[Key] = set()
        # Hidden keys whose value follows from the shown ones count as shown.
        known = determined(hidden, self.lines)
        for parent, kids in self.lines:
            if parent in hidden and parent not in known:
                continue
            shut = [k for k in kids if k in hidden and k not in known]
            if not shut or not self._small_sum(codes, shut, den_only):
                continue
            options = sorted((k for k in kids if k not in hidden), key=lambda k: (self.cost(k), k))
            choice = next(
                (k for k in options if not self._small_sum(codes, [*shut, k], den_only)), None
            )
            if choice is None:
                # The line's total, or when it is hidden already (it follows from others),
                # the cheapest shown key on the lines through it.
                choice = parent if parent not in hidden else self._neighbour(parent, hidden, set())
            if choice is not None:
                added.add(choice)
        return added - hidden

    def _per_class(
        self, space: _Space, needs: Mapping[Key, set[int | None]], hidden: set[Key]
    ) -> set[Key]:
        """Grows ``hidden`` until no key is determined in a problem it needs: over all
        strata, or over the strata of one age class with the others taken as published."""
        problems: list[tuple[set[Key], set[Key]]] = [
            (set(), {k for k, p in needs.items() if None in p})
        ]
        for c in range(len(space.relations)):
            fixed = {k for k, cl in space.classes.items() if cl != c}
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


RULES = ("strata-v2", "strata-v3", "strata-v4")


def protect_tables(
    tables: Sequence[IndicatorTable], rule: str = RULES[-1], history: Sequence[Earlier] = ()
) -> tuple[set[Unit], set[Unit]]:
    """(primary, complementary) suppressed cells of every indicator (see the module) under
    ``rule``: strata-v2 as the module describes, strata-v3 also protects sums of hidden
    cells (no line whose total is shown hides cells that add up to a small count),
    strata-v4 also no small change against the ``history`` (earlier reports). A
    report recomputes with the rule it recorded. The decision depends only on the tables,
    so it is remembered for the last few inputs: the reports of one contract over the same
    data, stratified differently, decide once."""
    if rule not in RULES:
        raise ValueError(f"unknown protection rule {rule!r}")
    populations: dict[str, list[IndicatorTable]] = defaultdict(list)
    for t in tables:
        populations[t.definition.population_key].append(t)
    first: set[Unit] = set()
    extra: set[Unit] = set()
    for group in populations.values():
        earlier = (
            tuple(e for e in history if not same_data(e, group)) if rule == "strata-v4" else ()
        )
        p, e = _protected(tuple(_frozen(t) for t in group), rule != "strata-v2", earlier)
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
def _protected(
    group: tuple[Frozen, ...], sums: bool, history: tuple[Earlier, ...]
) -> tuple[frozenset[Unit], frozenset[Unit]]:
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
    first, extra = _Population(tables).protect(sums, history)
    return frozenset(first), frozenset(extra)

"""The linear relations that hold, in every stratum, between the counts that the indicators
of one population publish: what an attacker who knows the definitions can combine.

Every count of a report cell is a count of patients of the stratum (or, for a rate, of their
events): the denominator counts all of them, the exclusions and numerators those with some
property. The properties come from the definitions: whether a code was measured from the
agreed sources in the window, which class its last value falls in (between the thresholds of
every definition reading it), the patient's age against an exclusion's age limit. A patient's
*type* is the combination of those properties; every published count is a sum over types.
Two counts of different indicators are related exactly when their sums are (for example
``DM2_HBA1C_AT_TARGET``'s exclusions under 70 are the patients without an HbA1c, the
denominator minus ``DM2_HBA1C_MEASURED``'s numerator).

:func:`local_relations` builds, for one age band, the matrix "count x patient type" and
returns a basis of its left null space: integer vectors ``r`` with ``sum r_q * count_q = 0``
for any patients whatsoever. Properties of different codes are independent, so the types are
built per group of codes that some indicator reads together (a component); all groups share
the denominator. A rate's numerator counts events, not patients: it is a count of its own per
(code, sources, window, exclusions), related to nothing else.

Quantities are named ``"<indicator>#den"``, ``"#excl"``, ``"#num"`` and, for band indicators,
``"#num:<label>"``.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import gcd, lcm
from typing import Any

from outcomes.indicators import OPS, Definition, parse

Relation = dict[str, int]
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "=": lambda a, b: a == b,
}
assert set(_OPS) == set(OPS)


@dataclass(frozen=True)
class Usage:
    """How one indicator reads one code: from these sources, in priority order, within the
    last ``window`` months."""

    sources: tuple[str, ...]
    window: int


# ------------------------------------------------------------------ value classes


def _value_tests(d: Definition, code: str) -> list[tuple[str, float]]:
    """(operator, limit) of every comparison the definition makes on the code's last value."""
    n = d.numerator
    if n["rule"] == "last_value" and n["code"] == code:
        return [(n["op"], float(n["value"]))]
    if n["rule"] == "last_value_band" and n["code"] == code:
        return [("<=", float(b["max"])) for b in d.bands[:-1]]
    return []


def value_classes(tests: Iterable[tuple[str, float]]) -> list[float]:
    """One representative value per class of values that every test treats alike."""
    points = sorted({limit for _op, limit in tests})
    tests = list(tests)
    if not points:
        return [0.0]
    candidates = [points[0] - 1.0, points[-1] + 1.0, *points]
    candidates += [(a + b) / 2 for a, b in itertools.pairwise(points)]
    seen: dict[tuple[bool, ...], float] = {}
    for value in sorted(candidates):
        seen.setdefault(tuple(_OPS[op](value, limit) for op, limit in tests), value)
    return sorted(seen.values())


# ------------------------------------------------------------------ one code's states


def _code_states(usages: Sequence[Usage], classes: int) -> list[tuple[int | None, ...]]:
    """Every combination of what the usages see of one code: per usage the class of the
    last value of its best source with data in its window, or None (nothing). Built source
    by source from every state a source can be in (no data, or its latest value in class k,
    first inside window j), so only combinations real data can produce are listed."""
    windows = sorted({u.window for u in usages})
    sources = sorted({s for u in usages for s in u.sources})
    # A partial state: per usage (rank of the best source so far, its class) or None.
    partial: set[tuple[tuple[int, int] | None, ...]] = {tuple(None for _ in usages)}
    for source in sources:
        options: list[tuple[int, int] | None] = [None]
        options += [(j, k) for j in range(len(windows)) for k in range(classes)]
        grown: set[tuple[tuple[int, int] | None, ...]] = set()
        for state in partial:
            for option in options:
                new = list(state)
                if option is not None:
                    first_window, k = option
                    for u, usage in enumerate(usages):
                        if source not in usage.sources:
                            continue
                        if windows[first_window] > usage.window:
                            continue  # the latest value lies outside this usage's window
                        rank = usage.sources.index(source)
                        if new[u] is None or rank < new[u][0]:  # type: ignore[index]
                            new[u] = (rank, k)
                grown.add(tuple(new))
        partial = grown
    return sorted(
        {tuple(None if x is None else x[1] for x in state) for state in partial},
        key=lambda t: tuple(-1 if x is None else x for x in t),
    )


# ------------------------------------------------------------------ the model of one band


@dataclass(frozen=True, eq=False)
class _Reader:
    """One indicator as a function of patient types."""

    definition: Definition
    sources: tuple[str, ...]

    @property
    def usage(self) -> Usage:
        return Usage(self.sources, self.definition.lookback_months)

    def age_limits(self) -> list[int]:
        return [
            int(e["value"])
            for e in self.definition.exclusions
            if e["rule"] in ("age_at_least", "age_below")
        ]


class _Model:
    """The patient types of one component in one age band and each quantity's value on them."""

    def __init__(self, readers: Sequence[_Reader], ages: tuple[int, int]) -> None:
        self.readers = list(readers)
        codes = sorted({c for r in readers for c in r.definition.codes()})
        self.codes = codes
        self.usages = {
            c: sorted({r.usage for r in readers if c in r.definition.codes()}, key=repr)
            for c in codes
        }
        self.values = {
            c: value_classes([t for r in readers for t in _value_tests(r.definition, c)])
            for c in codes
        }
        self.states = {c: _code_states(self.usages[c], len(self.values[c])) for c in codes}
        low, high = ages
        limits = sorted({v for r in readers for v in r.age_limits() if low < v <= high})
        self.ages = [low, *limits]  # one representative age per class inside the band

    def atoms(self) -> Iterable[tuple[Any, ...]]:
        """(age, state of each code): every patient type."""
        return itertools.product(self.ages, *(self.states[c] for c in self.codes))

    def seen(self, atom: tuple[Any, ...], reader: _Reader, code: str) -> float | None:
        """The value class representative the reader sees for the code, or None."""
        index = self.codes.index(code)
        state = atom[1 + index]
        k = state[self.usages[code].index(reader.usage)]
        return None if k is None else self.values[code][k]

    def excluded(self, atom: tuple[Any, ...], reader: _Reader) -> bool:
        age = atom[0]
        for e in reader.definition.exclusions:
            rule = e["rule"]
            if rule == "age_at_least" and age >= int(e["value"]):
                return True
            if rule == "age_below" and age < int(e["value"]):
                return True
            if rule == "not_measured" and all(
                self.seen(atom, reader, c) is None for c in e["codes"]
            ):
                return True
        return False

    def numerator(self, atom: tuple[Any, ...], reader: _Reader) -> dict[str, int]:
        """The reader's numerator quantities (1 or 0) for one patient of this type, given
        that the patient is not excluded."""
        d = reader.definition
        n = d.numerator
        rule = n["rule"]
        if rule == "measured":
            seen = [self.seen(atom, reader, c) is not None for c in n["codes"]]
            return {"num": int(all(seen) if n.get("all") else any(seen))}
        if rule == "at_least":
            count = sum(self.seen(atom, reader, c) is not None for c in n["codes"])
            return {"num": int(count >= int(n["count"]))}
        if rule == "last_value":
            value = self.seen(atom, reader, n["code"])
            return {"num": int(value is not None and _OPS[n["op"]](value, float(n["value"])))}
        # last_value_band
        value = self.seen(atom, reader, n["code"])
        labels = d.band_labels
        band = ""
        if value is not None:
            band = labels[-1]
            for b in d.bands[:-1]:
                if value <= float(b["max"]):
                    band = str(b["label"])
                    break
        return {f"num:{label}": int(band == label) for label in labels}


def _events_key(reader: _Reader) -> str:
    d = reader.definition
    return repr((d.numerator["code"], reader.sources, d.lookback_months, d.exclusions))


def _component_relations(readers: Sequence[_Reader], ages: tuple[int, int]) -> list[Relation]:
    model = _Model(readers, ages)
    atoms = list(model.atoms())
    events = sorted({_events_key(r) for r in readers if r.definition.kind == "rate"})
    names: list[str] = ["#den"]
    rows: list[list[int]] = [[1] * len(atoms) + [0] * len(events)]
    for r in readers:
        code = r.definition.code
        excl = [int(model.excluded(a, r)) for a in atoms]
        names.append(f"{code}#excl")
        rows.append(excl + [0] * len(events))
        if r.definition.kind == "rate":
            names.append(f"{code}#num")
            row = [0] * len(atoms) + [0] * len(events)
            if not all(excl):
                row[len(atoms) + events.index(_events_key(r))] = 1
            rows.append(row)
            continue
        per_atom = [model.numerator(a, r) for a in atoms]
        for key in per_atom[0]:
            names.append(f"{code}#{key}")
            rows.append(
                [0 if x else v[key] for v, x in zip(per_atom, excl, strict=True)]
                + [0] * len(events)
            )
    return [{names[i]: c for i, c in enumerate(vector) if c} for vector in left_null_space(rows)]


def local_relations(
    plan: Sequence[tuple[Definition, Sequence[str]]], ages: tuple[int, int]
) -> list[Relation]:
    """A basis of the relations between the quantities of the indicators of one population
    (each with its agreed sources) among the patients of one age band (ages ``[low,
    high]``), with ``"<code>#den"`` for every indicator's denominator."""
    key = tuple((d.canonical, tuple(s)) for d, s in plan)
    return [dict(r) for r in _cached(key, ages)]


@functools.lru_cache(maxsize=256)
def _cached(key: tuple[tuple[str, tuple[str, ...]], ...], ages: tuple[int, int]) -> list[Relation]:

    readers = [_Reader(parse(json.loads(raw)), sources) for raw, sources in key]
    return _relations(readers, ages)


def _relations(readers: Sequence[_Reader], ages: tuple[int, int]) -> list[Relation]:
    # Components: indicators that read a code in common, or share an age limit inside the
    # band, are modelled together.
    parent = list(range(len(readers)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    low, high = ages
    for i, j in itertools.combinations(range(len(readers)), 2):
        a, b = readers[i], readers[j]
        shared_codes = set(a.definition.codes()) & set(b.definition.codes())
        limits_a = {v for v in a.age_limits() if low < v <= high}
        limits_b = {v for v in b.age_limits() if low < v <= high}
        if shared_codes or (limits_a and limits_b):
            parent[find(i)] = find(j)
    groups: dict[int, list[_Reader]] = {}
    for i, r in enumerate(readers):
        groups.setdefault(find(i), []).append(r)
    relations: list[Relation] = []
    for group in groups.values():
        for relation in _component_relations(group, ages):
            # The component's shared denominator is every member's own denominator.
            shared = relation.pop("#den", 0)
            if shared:
                relation[f"{group[0].definition.code}#den"] = shared
            if relation:
                relations.append(relation)
    # All denominators of the population count the same patients.
    codes = [r.definition.code for r in readers]
    relations += [{f"{a}#den": 1, f"{b}#den": -1} for a, b in itertools.pairwise(codes)]
    return relations


# ------------------------------------------------------------------ exact linear algebra


def left_null_space(rows: Sequence[Sequence[int]]) -> list[list[int]]:
    """A basis (integer vectors, smallest integer multiples) of the vectors ``r`` with
    ``r @ rows == 0``, by Gauss-Jordan elimination over the rationals on ``[rows | I]``."""
    n = len(rows)
    width = len(rows[0]) if rows else 0
    matrix = [
        [Fraction(v) for v in row] + [Fraction(int(i == j)) for j in range(n)]
        for i, row in enumerate(rows)
    ]
    pivot_row = 0
    for col in range(width):
        found = next((r for r in range(pivot_row, n) if matrix[r][col] != 0), None)
        if found is None:
            continue
        matrix[pivot_row], matrix[found] = matrix[found], matrix[pivot_row]
        pivot = matrix[pivot_row][col]
        matrix[pivot_row] = [v / pivot for v in matrix[pivot_row]]
        for r in range(n):
            if r != pivot_row and matrix[r][col] != 0:
                factor = matrix[r][col]
                matrix[r] = [
                    a - factor * b for a, b in zip(matrix[r], matrix[pivot_row], strict=True)
                ]
        pivot_row += 1
    basis = []
    for r in range(pivot_row, n):
        vector = matrix[r][width:]
        scale = lcm(*(v.denominator for v in vector))
        ints = [int(v * scale) for v in vector]
        divisor = functools.reduce(gcd, (abs(v) for v in ints if v), 0) or 1
        basis.append([v // divisor for v in ints])
    return basis

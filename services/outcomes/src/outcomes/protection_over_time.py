"""Small-cell protection over time (rule strata-v4; strata-v3 and strata-v2 reports
recompute without it): the comparison of a report with the earlier reports of its contract,
which extends the rule for a single report (protection.py).

The attacker also holds every earlier report of the contract (any period, any cut-off:
other data) and subtracts. What it knows of an earlier report (``Earlier``): the shown
counts, zeros for strata its stratifiers publish without a cell, and what follows from them
through the margins (``EarlierKnowledge``, solved exactly); of this one: the shown keys and
the hidden keys that follow from them (``_known_now``, over all strata and per age class).
A count a cell publishes or implies that both know and that differs by 1 to 9 (either way)
makes the unit a primary of this report, protected like a small count in the problems it
needs; on every line, no sum of cells both know (the cells a report does not know enter all
together, where it knows the total) may differ by 1 to 9, else the cheapest changed cell
known in both is hidden (else the total). This repeats until nothing changes. Earlier
reports of the same data as this one change nothing and are left out (``same_data``), so the
decision for one data is still made once.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outcomes.suppression import PRIMES, Key, _rref, determined, is_small, lines_of

if TYPE_CHECKING:
    from outcomes.protection import IndicatorTable, Unit, _Population, _Space


@dataclass(frozen=True)
class Earlier:
    """What an earlier report of the same contract published, which its readers hold: per
    unit shown its (denominator, exclusions, numerator), the units it withheld, and its
    stratifiers (a key of a published shape without a cell is a count of zero). Reports of
    the same data (period end and cut-off) are one ``Earlier``: their cells are subsets of
    one protected table."""

    shown: tuple[tuple[str, Key, str, int, int, int], ...]
    withheld: tuple[tuple[str, Key, str], ...]
    stratifiers: tuple[tuple[str, ...], ...]


Groups = tuple[tuple[tuple[str, ...], tuple[tuple[str, int], ...]], ...]


class EarlierKnowledge:
    """The counts of one population a reader of an earlier report knows: shown, zero (a
    stratum the report's shape publishes but that had no patients), or following from
    those through the margins (solved exactly)."""

    def __init__(
        self,
        earlier: Earlier,
        labels: tuple[tuple[str, tuple[str, ...]], ...],
        now: tuple[Key, ...],
        groups: Groups = (),
    ) -> None:
        codes = {code for code, _labels in labels}
        self._values: dict[str, dict[Key, int | None]] = {}
        self._memo: dict[tuple[Any, ...], dict[Key, int | None]] = {}
        shown = [c for c in earlier.shown if c[0] in codes]
        withheld = [c for c in earlier.withheld if c[0] in codes]
        self.any = bool(shown)
        if not self.any:
            return
        dims = ("practice", "age_band", "sex")
        shapes = [set(s) for s in earlier.stratifiers]
        keys = {k for _c, k, *_r in shown} | {k for _c, k, _l in withheld}
        zero = {
            k
            for k in now
            if k not in keys
            and any(all(v == "" or d in s for d, v in zip(dims, k, strict=True)) for s in shapes)
        }
        keys |= zero
        lines = lines_of(keys)
        known: dict[str, dict[Key, int]] = defaultdict(dict)
        for code, key, label, den, excl, num in shown:
            known["#den"][key] = den
            known[f"{code}#excl"][key] = excl
            known[f"{code}#num:{label}" if label else f"{code}#num"][key] = num
        names = {"#den"}
        for code, code_labels in labels:
            names.add(f"{code}#excl")
            names |= {f"{code}#num:{lb}" if lb else f"{code}#num" for lb in code_labels}
        for name in names:
            values = known[name]
            for k in zero:
                values[k] = 0
            self._values[name] = _solve(keys, lines, values)
        # Through the relations of a group's age classes a reader may know more than the
        # margins give (a count of one class, the others taken as known): such a key is
        # known here without a value, and compared as changed.
        withheld_keys: dict[str, set[Key]] = defaultdict(set)
        for code, key, _label in withheld:
            withheld_keys[code].add(key)
        labels_of = dict(labels)
        for group_codes, classes in groups:
            band_class = dict(classes)
            if len(set(band_class.values())) <= 1:
                continue
            hidden = set.union(*(withheld_keys[c] for c in group_codes)) & keys
            more: set[Key] = set()
            for c in set(band_class.values()):
                fixed = {k for k in keys if k[1] and band_class.get(k[1]) != c}
                more |= determined(hidden - fixed, lines)
            group_names = ["#den"]
            for code in group_codes:
                group_names.append(f"{code}#excl")
                group_names += [f"{code}#num:{b}" if b else f"{code}#num" for b in labels_of[code]]
            for name in group_names:
                for k in more:
                    self._values[name].setdefault(k, None)

    def values(self, vector: Mapping[str, int], names: Sequence[str]) -> dict[Key, int | None]:
        """Per key where every quantity of ``vector`` (named ``names`` here) is known, the
        count (None: it follows from the margins but not as a whole number; never for real
        counts, and then taken as changed)."""
        signature = (tuple(vector.items()), tuple(names))
        if signature not in self._memo:
            self._memo[signature] = self._compute(vector, names)
        return self._memo[signature]

    def _compute(self, vector: Mapping[str, int], names: Sequence[str]) -> dict[Key, int | None]:
        maps = [self._values.get(n, {}) for n in names]
        out: dict[Key, int | None] = {}
        for key in set.intersection(*(set(m) for m in maps)) if maps else set():
            parts = [m[key] for m in maps]
            total: int | None = 0
            for (_n, c), p in zip(vector.items(), parts, strict=True):
                total = None if p is None or total is None else total + c * p
            out[key] = total
        return out


def earlier_knowledge(
    history: Sequence[Earlier],
    tables: Mapping[str, IndicatorTable],
    keys: Sequence[Key],
    spaces: Sequence[_Space],
) -> list[EarlierKnowledge]:
    """What a reader of each earlier report knows of the population of ``tables`` (whose
    strata are ``keys`` and groups ``spaces``); reports that showed none of it are left
    out."""
    labels = tuple((code, tuple(t.labels())) for code, t in sorted(tables.items()))
    groups = tuple(
        (tuple(space.codes), tuple(sorted(_band_classes(space).items()))) for space in spaces
    )
    known = [_knowledge(e, labels, tuple(keys), groups) for e in history]
    return [k for k in known if k.any]


def _band_classes(space: _Space) -> dict[str, int]:
    """The age class of each age band in a group (a class is a set of bands)."""
    return {key[1]: c for key, c in space.classes.items()}


@functools.lru_cache(maxsize=256)
def _knowledge(
    earlier: Earlier,
    labels: tuple[tuple[str, tuple[str, ...]], ...],
    now: tuple[Key, ...],
    groups: Groups,
) -> EarlierKnowledge:
    """An earlier report's knowledge, once per earlier report and population: the next
    report of the contract compares with the same earlier ones."""
    return EarlierKnowledge(earlier, labels, now, groups)


def _solve(
    keys: set[Key], lines: Sequence[tuple[Key, list[Key]]], values: Mapping[Key, int]
) -> dict[Key, int | None]:
    """The known values, and those of the unknown keys that follow from them through the
    margins: first line by line (a line with one unknown key), then the rest by elimination
    modulo a large prime (suppression.PRIMES; the values are whole numbers far below it, so
    the residue is the value)."""
    out: dict[Key, int | None] = dict(values)
    unknown = keys - set(values)
    progress = True
    while unknown and progress:
        progress = False
        for parent, kids in lines:
            members = [parent, *kids]
            missing = [k for k in members if k in unknown]
            if len(missing) != 1:
                continue
            (k,) = missing
            known_kids = sum(int(out[x] or 0) for x in kids if x != k)
            out[k] = int(out[parent] or 0) - known_kids if k != parent else known_kids
            unknown.discard(k)
            progress = True
    if not unknown or not determined(unknown, lines):
        return out
    prime = PRIMES[0]
    columns = sorted(unknown)
    index = {k: n for n, k in enumerate(columns)}
    rhs_column = len(columns)
    rows: list[dict[int, int]] = []
    for parent, kids in lines:
        row: dict[int, int] = {}
        rhs = 0  # the form sum(a_k x_k) - rhs == 0, with rhs moved into its own column
        for k, c in ((parent, 1), *((kid, -1) for kid in kids)):
            if k in index:
                row[index[k]] = row.get(index[k], 0) + c
            else:
                rhs -= c * int(out[k] or 0)
        if any(row.values()):
            row[rhs_column] = -rhs
            rows.append(row)
    for col, row in _rref(rows, prime).items():
        if col < rhs_column and set(row) <= {col, rhs_column}:
            value = (-row.get(rhs_column, 0)) % prime
            out[columns[col]] = value if value <= prime // 2 else value - prime
    return out


def same_data(earlier: Earlier, group: Sequence[IndicatorTable]) -> bool:
    """Whether an earlier report showed, of this population, only what these tables hold
    (the same data, e.g. a differently stratified report of it): then no count changed, it
    adds nothing to compare, and the decision is the one of that report's data."""
    tables = {t.definition.code: t for t in group}
    keys: set[Key] = set()
    for code, key, label, den, excl, num in earlier.shown:
        t = tables.get(code)
        if t is None:
            continue
        keys.add(key)
        if key not in t.den:
            return False
        if (t.den[key], t.excl[key], t.value(key, f"num:{label}" if label else "num")) != (
            den,
            excl,
            num,
        ):
            return False
    keys |= {key for code, key, _label in earlier.withheld if code in tables}
    dims = ("practice", "age_band", "sex")
    shapes = [set(s) for s in earlier.stratifiers]
    first = next(iter(tables.values()), None)
    for key in first.den if first else {}:
        shown_shape = any(
            all(v == "" or d in shape for d, v in zip(dims, key, strict=True)) for shape in shapes
        )
        if shown_shape and key not in keys and first is not None and first.den[key]:
            return False  # a stratum the earlier report had no patients in
    return bool(keys)


def _known_now(
    population: _Population, spaces: Sequence[_Space], per_space: Sequence[set[Key]]
) -> dict[str, set[Key]]:
    """Per quantity (``"#den"``, ``"<code>#excl"``, ``"<code>#num[:label]"``), the keys
    whose value a reader of this report knows: shown, or hidden and following from the
    shown keys (over all strata or, taking the other age classes as shown, one class's;
    more than the attacker may manage, so more is compared)."""
    out: dict[str, set[Key]] = {}
    keys = set(population.keys)
    for space, hidden in zip(spaces, per_space, strict=True):
        follows = determined(hidden, population.lines)
        if len(space.relations) > 1:
            for c in range(len(space.relations)):
                fixed = {k for k, cl in space.classes.items() if cl != c}
                follows |= determined(hidden - fixed, population.lines)
        known = keys - (hidden - follows)
        for code in space.codes:
            t = population.tables[code]
            out[f"{code}#excl"] = known
            for label in t.labels():
                out[f"{code}#num:{label}" if label else f"{code}#num"] = known
    everywhere = set.intersection(*per_space) if per_space else set()
    den = keys - (everywhere - determined(everywhere, population.lines))
    # A key a group knows (also through its age classes) tells its denominator.
    for space in spaces:
        den |= out[f"{space.codes[0]}#excl"]
    out["#den"] = den
    return out


def changes_exposed(
    population: _Population,
    spaces: Sequence[_Space],
    per_space: Sequence[set[Key]],
    history: Sequence[EarlierKnowledge],
    flagged: Mapping[Unit, list[dict[str, int]]],
) -> dict[Unit, list[dict[str, int]]]:
    """Cells to hide so that no count a cell publishes or implies, of one key or summed
    over cells of one line, that a reader knows in this report and in an earlier one
    changed by 1 to 9 (either way) between them. Per such change: the key itself when
    its own count changed; on a line, the cheapest key known in both whose change is
    not zero, else the line's total."""
    now = _known_now(population, spaces, per_space)
    out: dict[Unit, list[dict[str, int]]] = defaultdict(list)

    def flag(unit: Unit, vector: dict[str, int]) -> None:
        if vector not in flagged.get(unit, []) and vector not in out[unit]:
            out[unit].append(vector)

    for code, t in population.tables.items():
        for label in t.labels():
            for vector in t.derived(population.keys[0], label):
                names = [_quantity(code, n) for n, _c in vector.items()]
                shown = set.intersection(*(now[n] for n in names))

                def value(key: Key, vector: dict[str, int] = vector, t: IndicatorTable = t) -> int:
                    if key not in t.den:
                        return 0  # a stratum without patients now
                    return sum(c * t.value(key, n) for n, c in vector.items())

                for before in history:
                    old = before.values(vector, names)
                    if all(v is not None and v == value(k) for k, v in old.items()):
                        continue  # no count of the vector changed where it was known
                    for k in sorted(shown & old.keys()):
                        then = old[k]
                        if then is None or is_small(abs(value(k) - then)):
                            flag((code, k, label), vector)
                    for parent, kids in population.lines:
                        choice = _line_change(population.cost, parent, kids, shown, old, value)
                        if choice is not None:
                            flag((code, choice, label), vector)
    return {u: v for u, v in out.items() if v}


def _line_change(
    cost: Callable[[Key], tuple[float, ...]],
    parent: Key,
    kids: Sequence[Key],
    shown: set[Key],
    old: Mapping[Key, int | None],
    value: Callable[[Key], int],
) -> Key | None:
    """On one line, whether a sum of cells known in both reports changed by a small
    count; if so the key to hide (see changes_exposed). A sum of the line's cells is
    known in a report when it holds every or no cell the report leaves unknown (every
    only when the line's total is known there), so the unknown cells of each report
    enter as one block; overlapping blocks as one."""
    unvalued = {k for k in (parent, *kids) if k in old and old[k] is None}
    if unvalued:
        return _unvalued_change(cost, parent, kids, shown, unvalued)
    unknown_now = {k for k in kids if k not in shown}
    unknown_then = {k for k in kids if old.get(k) is None}
    if unknown_now & unknown_then:
        blocks = [unknown_now | unknown_then]
    else:
        blocks = [b for b in (unknown_now, unknown_then) if b]
    excluded: set[Key] = set()
    if parent not in shown:
        excluded |= unknown_now
    then_total = old.get(parent)
    if then_total is None:
        excluded |= unknown_then
    elements: list[tuple[int, list[Key]]] = []
    for block in blocks:
        if block & excluded:
            continue
        now = sum(value(k) for k in block)
        if block & unknown_then:
            assert then_total is not None
            then = then_total - sum(int(old[k] or 0) for k in kids if k not in block)
        else:
            then = sum(int(old[k] or 0) for k in block)
        elements.append((now - then, sorted(block)))
    free = [k for k in kids if k not in unknown_now | unknown_then]
    elements += [(value(k) - int(old[k] or 0), [k]) for k in free]
    if not _small_subset_sum([d for d, _k in elements]):
        return None
    candidates = [k for d, members in elements if d for k in members if k in shown]
    if candidates:
        return min(candidates, key=lambda k: (cost(k), k))
    return parent


def _unvalued_change(
    cost: Callable[[Key], tuple[float, ...]],
    parent: Key,
    kids: Sequence[Key],
    shown: set[Key],
    unvalued: set[Key],
) -> Key | None:
    """A line with keys an earlier report knew without a value here (through the
    relations of age classes): any sum through them may have changed a little, so the
    cheapest of them shown now is hidden, else the line's total (the total itself is
    compared as its own key)."""
    options = [k for k in kids if k in unvalued and k in shown]
    if options:
        return min(options, key=lambda k: (cost(k), k))
    if parent not in unvalued and parent in shown:
        return parent
    return None


def _quantity(code: str, name: str) -> str:
    """A cell quantity's name across the population: one denominator for all."""
    return "#den" if name == "den" else f"{code}#{name}"


def _small_subset_sum(deltas: Sequence[int]) -> bool:
    """Whether some of ``deltas`` (at least one) add up to 1 to 9 or -9 to -1."""
    sums: set[int] = set()
    for d in deltas:
        if d:
            sums |= {d} | {s + d for s in sums}
        if any(is_small(abs(s)) for s in sums):
            return True
    return False

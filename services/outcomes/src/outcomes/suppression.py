"""Small-cell suppression over a table with all its margins.

A table is a set of cells keyed by tuples over its dimensions, where ``""`` in a position
means "all values of that dimension" (a margin). Every margin equals the sum of the cells
one level finer along any one of its ``""`` dimensions: those are the lines of the table.

1. **Primary:** the caller names the cells holding a non-zero count below the threshold.
2. **Complementary:** while some suppressed cell is *determined* by the published cells,
   that is, its value follows from the line equations by any sequence of subtractions and
   additions, another cell on one of its lines is suppressed (the cheapest allowed one); a
   small cell that is determined although every cell on its lines is suppressed already has
   the cheapest allowed cell on the lines of the nearest suppressed cells suppressed.

A cell is determined exactly when its unit vector lies in the row space of the line
equations restricted to the suppressed cells; in reduced row echelon form that is a row
with a single non-zero entry. The test is exact (see PRIMES), so no suppressed value can
be recovered by subtraction, whatever combination of lines an attacker uses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

Key = tuple[str, ...]
THRESHOLD = 10


def is_small(count: float) -> bool:
    """A non-zero count below the threshold (primary suppression)."""
    return 0 < count < THRESHOLD


def lines_of(keys: Iterable[Key]) -> list[tuple[Key, list[Key]]]:
    """Every (margin, cells one level finer) relation present in the table."""
    present = set(keys)
    children: dict[tuple[Key, int], list[Key]] = defaultdict(list)
    for key in present:
        for i, value in enumerate(key):
            if value == "":
                continue
            parent = (*key[:i], "", *key[i + 1 :])
            if parent in present:
                children[(parent, i)].append(key)
    return [(parent, sorted(kids)) for (parent, _i), kids in sorted(children.items())]


# Elimination runs over the integers modulo a large prime: the line equations have
# coefficients 0 and +-1, so a rank that differs from the rank over the rationals would need
# the prime to divide a non-zero minor (odds of about one in 2^61 per minor). (The tests
# check the published tables with exact rational arithmetic.)
PRIMES = (2**61 - 1,)


def determined(suppressed: set[Key], lines: Sequence[tuple[Key, list[Key]]]) -> set[Key]:
    """The suppressed cells whose value follows from the published ones."""
    if not suppressed:
        return set()
    columns = sorted(suppressed)
    index = {k: i for i, k in enumerate(columns)}
    rows: list[dict[int, int]] = []
    for parent, kids in lines:
        row: dict[int, int] = {}
        if parent in index:
            row[index[parent]] = 1
        for kid in kids:
            if kid in index:
                row[index[kid]] = row.get(index[kid], 0) - 1
        row = {c: v for c, v in row.items() if v}
        if row:
            rows.append(row)
    found: set[Key] = set()
    for prime in PRIMES:
        pivots = _rref(rows, prime)
        found |= {columns[col] for col, row in pivots.items() if len(row) == 1}
    return found


def _subtract(target: dict[int, int], factor: int, source: dict[int, int], p: int) -> None:
    """target -= factor * source (mod p), dropping zeros."""
    for c, v in source.items():
        nv = (target.get(c, 0) - factor * v) % p
        if nv:
            target[c] = nv
        else:
            target.pop(c, None)


def _rref(rows: list[dict[int, int]], p: int) -> dict[int, dict[int, int]]:
    """Sparse Gauss-Jordan elimination modulo ``p``; the pivot rows keyed by pivot column."""
    pivots: dict[int, dict[int, int]] = {}
    users: dict[int, set[int]] = {}  # column -> pivot columns whose row may have an entry there
    for original in rows:
        row = {c: v % p for c, v in original.items() if v % p}
        for col in sorted(c for c in row if c in pivots):
            factor = row.get(col)
            if factor:
                _subtract(row, factor, pivots[col], p)
        if not row:
            continue
        col = min(row)
        inverse = pow(row[col], p - 2, p)
        row = {c: (v * inverse) % p for c, v in row.items()}
        for pcol in list(users.get(col, ())):
            prow = pivots[pcol]
            factor = prow.get(col)
            if factor:
                _subtract(prow, factor, row, p)
                for c in row:
                    users.setdefault(c, set()).add(pcol)
        pivots[col] = row
        for c in row:
            users.setdefault(c, set()).add(col)
    return pivots


Lines = Sequence[tuple[Key, list[Key]]]


def _nearest(
    cell: Key,
    lines: Lines,
    by_cell: dict[Key, list[int]],
    suppressed: set[Key],
    blocked: set[Key],
    cost: Callable[[Key], tuple[float, ...]],
) -> Key | None:
    """For a cell determined although every cell on its lines is suppressed already (it
    follows through them): the cheapest allowed cell on the lines of the nearest suppressed
    cells (fewest lines away) that have one."""
    seen = {cell}
    frontier = [cell]
    while frontier:
        candidates: set[Key] = set()
        reached: list[Key] = []
        for c in frontier:
            for n in by_cell[c]:
                parent, kids = lines[n]
                for k in (parent, *kids):
                    if k in suppressed:
                        if k not in seen:
                            seen.add(k)
                            reached.append(k)
                    elif k not in blocked:
                        candidates.add(k)
        if candidates:
            return min(candidates, key=lambda k: (cost(k), k))
        frontier = reached
    return None


def _hide_further_out(
    cells: set[Key],
    lines: Lines,
    by_cell: dict[Key, list[int]],
    suppressed: set[Key],
    blocked: set[Key],
    cost: Callable[[Key], tuple[float, ...]],
) -> bool:
    """Suppresses, for each of ``cells``, the cell :func:`_nearest` finds; whether any."""
    added = False
    for cell in sorted(cells):
        choice = _nearest(cell, lines, by_cell, suppressed, blocked, cost)
        if choice is not None and choice not in suppressed:
            suppressed.add(choice)
            added = True
    return added


def protect(
    keys: Iterable[Key],
    primary: Iterable[Key],
    cost: Callable[[Key], tuple[float, ...]],
    forbidden: Iterable[Key] = (),
) -> tuple[set[Key], set[Key]]:
    """(primary, complementary) suppressed cells such that none is determined.

    ``cost`` orders the candidates for complementary suppression (cheapest first);
    ``forbidden`` cells are published anyway (their value is known elsewhere) and are never
    chosen. Raises ValueError if a determined cell has no allowed neighbour left.
    """
    all_keys = sorted(set(keys))
    first = set(primary) & set(all_keys)
    blocked = set(forbidden)
    lines = lines_of(all_keys)
    by_cell: dict[Key, list[int]] = defaultdict(list)
    for n, (parent, kids) in enumerate(lines):
        for k in (parent, *kids):
            by_cell[k].append(n)
    suppressed = set(first)

    def cheapest(cell: Key) -> Key | None:
        candidates: set[Key] = set()
        for n in by_cell[cell]:
            parent, kids = lines[n]
            candidates.update(
                k for k in (parent, *kids) if k not in suppressed and k not in blocked
            )
        return min(candidates, key=lambda k: (cost(k), k)) if candidates else None

    while True:
        # Fast pass: no line may hold exactly one suppressed cell.
        changed = True
        while changed:
            changed = False
            for parent, kids in lines:
                members = (parent, *kids)
                hidden = [k for k in members if k in suppressed]
                if len(hidden) != 1:
                    continue
                options = [k for k in members if k not in suppressed and k not in blocked]
                if options:
                    suppressed.add(min(options, key=lambda k: (cost(k), k)))
                    changed = True
        # Exact pass: no suppressed cell may follow from any combination of lines.
        exposed = determined(suppressed, lines)
        added = False
        for cell in sorted(exposed):
            choice = cheapest(cell)
            if choice is not None and choice not in suppressed:
                suppressed.add(choice)
                added = True
        if not added and exposed & first:
            # Every line of each exposed small cell is suppressed: hide more further out.
            added = _hide_further_out(exposed & first, lines, by_cell, suppressed, blocked, cost)
            if not added:
                raise ValueError("a small cell cannot be protected")
        if not added:
            break
    return first, suppressed - first

"""Small-cell suppression: primary below 10, complementary so that nothing is recoverable."""

from __future__ import annotations

import itertools

from outcomes.suppression import Key, determined, is_small, lines_of, protect


def _cube(fine: dict[Key, int]) -> dict[Key, int]:
    out: dict[Key, int] = {}
    for key, value in fine.items():
        for mask in itertools.product((False, True), repeat=len(key)):
            sub = tuple("" if m else v for v, m in zip(key, mask, strict=True))
            out[sub] = out.get(sub, 0) + value
    return out


def _attack(published: dict[Key, int], hidden: set[Key]) -> set[Key]:
    """Repeated subtraction along every line until nothing more falls out."""
    known = dict(published)
    unknown = set(hidden)
    lines = lines_of([*known, *unknown])
    found: set[Key] = set()
    changed = True
    while changed:
        changed = False
        for parent, kids in lines:
            missing = [k for k in (parent, *kids) if k in unknown]
            if len(missing) == 1:
                (m,) = missing
                known[m] = (
                    sum(known[k] for k in kids)
                    if m == parent
                    else known[parent] - sum(known[k] for k in kids if k != m)
                )
                unknown.discard(m)
                found.add(m)
                changed = True
    return found


def test_only_non_zero_counts_below_ten_are_small() -> None:
    assert [is_small(x) for x in (0, 1, 9, 10, 250)] == [False, True, True, False, False]


def test_a_lone_small_cell_gets_a_complementary_partner_in_every_line() -> None:
    fine: dict[Key, int] = {("a", "x"): 5, ("a", "y"): 30, ("b", "x"): 40, ("b", "y"): 50}
    cube = _cube(fine)
    first, extra = protect(
        cube, {k for k, v in cube.items() if is_small(v)}, cost=lambda k: (cube[k],)
    )
    assert first == {("a", "x")}
    assert extra  # at least one more cell in its row and its column
    hidden = first | extra
    published = {k: v for k, v in cube.items() if k not in hidden}
    assert _attack(published, hidden) == set()
    assert determined(hidden, lines_of(cube)) == set()


def test_subtraction_from_the_total_recovers_nothing_in_a_three_way_table() -> None:
    fine: dict[Key, int] = {
        (p, a, s): n
        for (p, a, s), n in zip(
            itertools.product(["p1", "p2", "p3"], ["40-59", "60-69", "70-79"], ["F", "M"]),
            [3, 12, 25, 7, 14, 30, 11, 4, 22, 19, 8, 40, 12, 12, 5, 33, 18, 9],
            strict=True,
        )
    }
    cube = _cube(fine)
    primary = {k for k, v in cube.items() if is_small(v)}
    first, extra = protect(cube, primary, cost=lambda k: (sum(1 for x in k if x == ""), cube[k]))
    hidden = first | extra
    published = {k: v for k, v in cube.items() if k not in hidden}
    assert primary <= hidden
    assert _attack(published, hidden) == set()
    assert determined(hidden, lines_of(cube)) == set()


def test_determined_finds_a_cell_recoverable_only_through_two_lines() -> None:
    # 2x2 with margins: hiding (a,x), (a,y) and (a,"") still leaves (a,x) = (,x) - (b,x).
    cube = _cube({("a", "x"): 3, ("a", "y"): 4, ("b", "x"): 20, ("b", "y"): 30})
    hidden: set[Key] = {("a", "x"), ("a", "y"), ("a", "")}
    assert determined(hidden, lines_of(cube)) == hidden


def test_forbidden_cells_are_never_chosen() -> None:
    cube = _cube({("a", "x"): 5, ("a", "y"): 30, ("b", "x"): 40, ("b", "y"): 50})
    forbidden = {("a", "y"), ("", "x")}
    first, extra = protect(cube, {("a", "x")}, cost=lambda k: (cube[k],), forbidden=forbidden)
    assert not extra & forbidden
    assert determined(first | extra, lines_of(cube)) == set()

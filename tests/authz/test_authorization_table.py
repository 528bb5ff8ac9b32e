"""The authorization oracle: every row of the table (authorization_table.psv) played against
identity, referral, careplan and outcomes running as real servers, with real tokens; the
code and ErrorInfo reason (or Authorize's decision) must be the row's, and where the row
says how much the caller sees, that too.

Then: a patient who does not exist and a patient the caller may not see get the very same
answer (code, message, reason and domain), RPC by RPC and caller by caller.
"""

from __future__ import annotations

import pytest

from .calls import Player, Result
from .facts import Facts
from .table import Row, load

ROWS = load()


@pytest.fixture(scope="module")
def player(facts: Facts) -> Player:
    return Player(facts)


@pytest.fixture(scope="module")
def answers() -> dict[str, Result]:
    """What each row got, for the comparisons after the table (filled as rows play)."""
    return {}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_the_row_holds(player: Player, answers: dict[str, Result], row: Row) -> None:
    got = player.play(row)
    answers[row.id] = got
    want = f"{row.expected} (sees {row.sees})" if row.sees else row.expected
    have = f"{got.outcome} (sees {got.sees})" if row.sees and got.outcome == "OK" else got.outcome
    assert have == want, (
        f"{row.rpc} as {row.caller} (relationship {row.relationship}, consent {row.consent}, "
        f"tenant {row.tenant}, patient {row.patient}, case {row.case}): "
        f"expected {want}, got {have} [table line {row.line}]"
    )


def _twins() -> list[tuple[Row, Row]]:
    """(nonexistent patient, existing patient the caller may not see) row pairs: for each
    RPC and caller with a nonexistent-patient row, the caller's row about an existing
    patient in another care group, or else one with no care relationship, that expects
    the same."""
    pairs: list[tuple[Row, Row]] = []
    for row in ROWS:
        if row.patient != "nonexistent":
            continue

        def twin(other: Row, row: Row = row) -> bool:
            return (
                other.rpc == row.rpc
                and other.case == row.case
                and other.patient != "nonexistent"
                and other.expected == row.expected
                and other.expected != "OK"
            )

        same_caller = [o for o in ROWS if twin(o) and o.caller == row.caller]
        other_tenant = [o for o in ROWS if twin(o) and o.tenant == "other"]
        for other in (same_caller or other_tenant)[:1]:
            pairs.append((row, other))
    return pairs


TWINS = _twins()


@pytest.mark.parametrize(
    ("absent", "hidden"), TWINS, ids=[f"{a.id}~{h.caller},{h.tenant}" for a, h in TWINS]
)
def test_a_missing_patient_answers_like_a_hidden_one(
    player: Player, answers: dict[str, Result], absent: Row, hidden: Row
) -> None:
    first = answers.get(absent.id) or player.play(absent)
    second = answers.get(hidden.id) or player.play(hidden)
    if first.status is None or second.status is None:
        assert first.outcome == second.outcome
        return
    assert first.status == second.status, (
        f"{absent.rpc}: a nonexistent patient answers {first.status}, "
        f"an existing one the caller may not see {second.status}"
    )

"""Financing arrangements as pure functions over Decimals (reference §5).

Every result carries its lines: label, amount, formula and the inputs it came from, so
each amount can be traced back to the contract terms, the report and the cost record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
# What a line's amount is: euro, a rate (a fraction) or a 1/0 test.
EURO = "EUR"
RATE = "rate"
TEST = "test"


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


@dataclass(frozen=True)
class Line:
    label: str
    amount: Decimal
    formula: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    unit: str = EURO


@dataclass(frozen=True)
class Evaluation:
    total: Decimal
    lines: list[Line]
    quality_gate_met: bool = True


@dataclass(frozen=True)
class IndicatorTerm:
    indicator: str
    score: Decimal | None  # None: not available (e.g. suppressed)
    target: Decimal
    floor: Decimal
    payment: Decimal = Decimal(0)
    lower_is_better: bool = False


def achievement(term: IndicatorTerm) -> Decimal:
    """The fraction of the payment earned: 1 at or beyond target, pro rata between floor and
    target, 0 below the floor (or when the score is not available)."""
    if term.score is None:
        return Decimal(0)
    score, target, floor = term.score, term.target, term.floor
    if term.lower_is_better:
        score, target, floor = -score, -target, -floor
    if score >= target:
        return Decimal(1)
    if floor < target and score >= floor:
        return (score - floor) / (target - floor)
    return Decimal(0)


def pay_for_performance(terms: Sequence[IndicatorTerm]) -> Evaluation:
    lines = []
    total = Decimal(0)
    for t in terms:
        share = achievement(t)
        amount = money(t.payment * share)
        total += amount
        lines.append(
            Line(
                f"pay for performance: {t.indicator}",
                amount,
                "payment x achievement; achievement = 1 at target, "
                "(score - floor) / (target - floor) between floor and target, else 0",
                {
                    "score": "n/a" if t.score is None else fmt(t.score),
                    "floor": fmt(t.floor),
                    "target": fmt(t.target),
                    "payment": fmt(t.payment),
                    "achievement": fmt(share.quantize(Decimal("0.000001"))),
                },
            )
        )
    return Evaluation(money(total), lines)


def quality_gate(terms: Sequence[IndicatorTerm]) -> tuple[bool, list[Line]]:
    lines = []
    met = True
    for t in terms:
        ok = t.score is not None and (
            t.score <= t.floor if t.lower_is_better else t.score >= t.floor
        )
        met = met and ok
        lines.append(
            Line(
                f"quality gate: {t.indicator}",
                Decimal(1 if ok else 0),
                "1 when the score is at or beyond the floor",
                {"score": "n/a" if t.score is None else fmt(t.score), "floor": fmt(t.floor)},
                TEST,
            )
        )
    return met, lines


def shared_savings(
    *,
    benchmark: Decimal,
    actual: Decimal,
    minimum_savings_rate: Decimal,
    sharing_rate: Decimal,
    first_euro: bool,
    gate: Sequence[IndicatorTerm] = (),
    cap: Decimal | None = None,
) -> Evaluation:
    gross = benchmark - actual
    rate = gross / benchmark if benchmark else Decimal(0)
    met, gate_lines = quality_gate(gate)
    inputs = {
        "benchmark": fmt(benchmark),
        "actual": fmt(actual),
        "minimum_savings_rate": fmt(minimum_savings_rate),
        "sharing_rate": fmt(sharing_rate),
        "mode": "first-euro" if first_euro else "above-threshold",
    }
    lines = [
        Line("gross savings", money(gross), "benchmark - actual", inputs),
        Line(
            "savings rate",
            rate.quantize(Decimal("0.000001")),
            "gross savings / benchmark",
            inputs,
            RATE,
        ),
        *gate_lines,
    ]
    if rate < minimum_savings_rate:
        lines.append(
            Line(
                "payout", Decimal("0.00"), "0: savings rate below the minimum savings rate", inputs
            )
        )
        return Evaluation(Decimal("0.00"), lines, met)
    if not met:
        lines.append(Line("payout", Decimal("0.00"), "0: quality gate not met", inputs))
        return Evaluation(Decimal("0.00"), lines, met)
    shareable = gross if first_euro else gross - minimum_savings_rate * benchmark
    payout = shareable * sharing_rate
    formula = (
        "gross savings x sharing rate"
        if first_euro
        else "(gross savings - minimum savings rate x benchmark) x sharing rate"
    )
    if cap is not None and payout > cap:
        payout = cap
        formula += ", capped"
        inputs = {**inputs, "cap": fmt(cap)}
    lines.append(Line("payout", money(payout), formula, inputs))
    return Evaluation(money(payout), lines, met)


def capitation(*, per_person_year: Decimal, person_years: Decimal, actual: Decimal) -> Evaluation:
    budget = per_person_year * person_years
    inputs = {
        "capitation_per_person_year": fmt(per_person_year),
        "insured_person_years": fmt(person_years),
        "actual": fmt(actual),
    }
    result = budget - actual
    return Evaluation(
        money(result),
        [
            Line(
                "budget", money(budget), "capitation per person-year x insured person-years", inputs
            ),
            Line(
                "result",
                money(result),
                "budget - actual (positive: surplus for the care group)",
                inputs,
            ),
        ],
    )

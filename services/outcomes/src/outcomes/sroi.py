"""Social return on investment (reference §5), as a pure function over Decimals.

impact in year 1 = quantity x proxy x (1 - deadweight) x (1 - displacement) x (1 - attribution);
impact in year t = impact in year 1 x (1 - drop-off)^(t - 1), for t = 1..duration;
present value = sum of impact_t / (1 + r)^t; ratio = PV / investment; NSV = PV - investment.

Sensitivity: the ratio again with pessimistic assumptions (proxies x 0.8, deadweight and
attribution +0.1, drop-off +0.1, each capped at 1) and optimistic ones (proxies x 1.2,
deadweight, attribution and drop-off -0.1, each floored at 0).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from outcomes.financing import Line, fmt

PLACES = Decimal("0.01")
RATIO_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Investment:
    stakeholder: str
    amount: Decimal


@dataclass(frozen=True)
class Outcome:
    stakeholder: str
    description: str
    quantity: Decimal
    proxy: Decimal
    duration_years: int
    deadweight: Decimal = Decimal(0)
    displacement: Decimal = Decimal(0)
    attribution: Decimal = Decimal(0)
    drop_off: Decimal = Decimal(0)


@dataclass(frozen=True)
class SroiResult:
    investment_by_stakeholder: dict[str, Decimal]
    value_by_stakeholder: dict[str, Decimal]
    total_investment: Decimal
    total_value: Decimal
    ratio: Decimal
    net_social_value: Decimal
    ratio_low: Decimal
    ratio_high: Decimal
    lines: list[Line]


def present_value(outcome: Outcome, rate: Decimal) -> tuple[Decimal, list[Decimal]]:
    first = (
        outcome.quantity
        * outcome.proxy
        * (1 - outcome.deadweight)
        * (1 - outcome.displacement)
        * (1 - outcome.attribution)
    )
    yearly = []
    total = Decimal(0)
    for t in range(1, outcome.duration_years + 1):
        impact = first * (1 - outcome.drop_off) ** (t - 1)
        discounted = impact / (1 + rate) ** t
        yearly.append(discounted)
        total += discounted
    return total, yearly


def _clamp(value: Decimal) -> Decimal:
    return min(Decimal(1), max(Decimal(0), value))


def _ratio(outcomes: Sequence[Outcome], rate: Decimal, invested: Decimal) -> Decimal:
    total = sum((present_value(o, rate)[0] for o in outcomes), Decimal(0))
    return (total / invested).quantize(RATIO_PLACES) if invested else Decimal(0)


def calculate(
    investments: Sequence[Investment], outcomes: Sequence[Outcome], rate: Decimal
) -> SroiResult:
    invest: dict[str, Decimal] = defaultdict(Decimal)
    for i in investments:
        invest[i.stakeholder] += i.amount
    value: dict[str, Decimal] = defaultdict(Decimal)
    lines = []
    for o in outcomes:
        pv, yearly = present_value(o, rate)
        value[o.stakeholder] += pv
        lines.append(
            Line(
                f"present value: {o.description or o.stakeholder}",
                pv.quantize(PLACES),
                "sum over t=1..duration of quantity x proxy x (1-deadweight) x (1-displacement) "
                "x (1-attribution) x (1-drop_off)^(t-1) / (1+discount_rate)^t",
                {
                    "stakeholder": o.stakeholder,
                    "quantity": fmt(o.quantity),
                    "financial_proxy": fmt(o.proxy),
                    "duration_years": str(o.duration_years),
                    "deadweight": fmt(o.deadweight),
                    "displacement": fmt(o.displacement),
                    "attribution": fmt(o.attribution),
                    "drop_off": fmt(o.drop_off),
                    "discount_rate": fmt(rate),
                    "yearly_present_values": ";".join(str(y.quantize(PLACES)) for y in yearly),
                },
            )
        )
    total_inv = sum(invest.values(), Decimal(0))
    total_val = sum(value.values(), Decimal(0))
    low = [
        replace(
            o,
            proxy=o.proxy * Decimal("0.8"),
            deadweight=_clamp(o.deadweight + Decimal("0.1")),
            attribution=_clamp(o.attribution + Decimal("0.1")),
            drop_off=_clamp(o.drop_off + Decimal("0.1")),
        )
        for o in outcomes
    ]
    high = [
        replace(
            o,
            proxy=o.proxy * Decimal("1.2"),
            deadweight=_clamp(o.deadweight - Decimal("0.1")),
            attribution=_clamp(o.attribution - Decimal("0.1")),
            drop_off=_clamp(o.drop_off - Decimal("0.1")),
        )
        for o in outcomes
    ]
    stakeholders = sorted(set(invest) | set(value))
    return SroiResult(
        investment_by_stakeholder={
            s: invest.get(s, Decimal(0)).quantize(PLACES) for s in stakeholders
        },
        value_by_stakeholder={s: value.get(s, Decimal(0)).quantize(PLACES) for s in stakeholders},
        total_investment=total_inv.quantize(PLACES),
        total_value=total_val.quantize(PLACES),
        ratio=(total_val / total_inv).quantize(RATIO_PLACES) if total_inv else Decimal(0),
        net_social_value=(total_val - total_inv).quantize(PLACES),
        ratio_low=_ratio(low, rate, total_inv),
        ratio_high=_ratio(high, rate, total_inv),
        lines=lines,
    )

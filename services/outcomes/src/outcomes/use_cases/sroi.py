"""The SROI business case (CalculateSroi): any report reader may compute one from the
investments and outcomes it sends; the formula is the pure function in outcomes.sroi.
Nothing is stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from outcomes import errors, sroi
from outcomes.base import REPORT_READERS, decimal_value
from servicekit.auth import Principal
from servicekit.errors import Violations

FRACTIONS = ("deadweight", "displacement", "attribution", "drop_off")


@dataclass(frozen=True)
class InvestmentInput:
    stakeholder: str
    amount: str  # euro, a decimal string


@dataclass(frozen=True)
class OutcomeInput:
    stakeholder: str
    description: str
    quantity: str
    financial_proxy: str  # euro per unit of quantity
    duration_years: int
    deadweight: str
    displacement: str
    attribution: str
    drop_off: str


def calculate_sroi(
    principal: Principal,
    investments: Sequence[InvestmentInput],
    outcomes: Sequence[OutcomeInput],
    discount_rate: str,
) -> sroi.SroiResult:
    """Every amount a decimal (INVALID_DECIMAL), at least one investment, each positive;
    fractions and the discount rate between 0 and 1 (INVALID_FRACTION), durations of 1 to 50
    years, a stakeholder for each outcome; then the caller's role."""
    v = Violations()
    if not investments:
        v.add("investments", "at least one", "INVESTMENTS_REQUIRED")
    invested = [
        sroi.Investment(i.stakeholder, decimal_value(i.amount, f"investments[{n}].amount", v))
        for n, i in enumerate(investments)
    ]
    valued = []
    for n, o in enumerate(outcomes):
        p = f"outcomes[{n}]"
        fractions = {k: decimal_value(getattr(o, k), f"{p}.{k}", v) for k in FRACTIONS}
        for k, x in fractions.items():
            if not 0 <= x <= 1:
                v.add(f"{p}.{k}", "a fraction between 0 and 1", "INVALID_FRACTION")
        if not 1 <= o.duration_years <= 50:
            v.add(f"{p}.duration_years", "between 1 and 50", "INVALID_DURATION")
        if not o.stakeholder:
            v.add(f"{p}.stakeholder", "is required", "STAKEHOLDER_REQUIRED")
        valued.append(
            sroi.Outcome(
                stakeholder=o.stakeholder,
                description=o.description,
                quantity=decimal_value(o.quantity, f"{p}.quantity", v),
                proxy=decimal_value(o.financial_proxy, f"{p}.financial_proxy", v),
                duration_years=o.duration_years,
                **fractions,
            )
        )
    rate = decimal_value(discount_rate, "discount_rate", v)
    if not 0 <= rate < 1:
        v.add("discount_rate", "a fraction between 0 and 1", "INVALID_FRACTION")
    if any(i.amount <= 0 for i in invested):
        v.add("investments", "amounts must be positive", "INVALID_DECIMAL")
    v.raise_if_any()
    if not principal.roles & REPORT_READERS:
        raise errors.RoleNotPermitted("this role does not compute business cases")
    return sroi.calculate(invested, valued, rate)

"""The SROI business case (CalculateSroi): any report reader may compute one; the formula is
the pure function in outcomes.sroi. Nothing is stored."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from outcomes import errors, sroi
from outcomes.base import REPORT_READERS
from servicekit.auth import Principal


def calculate_sroi(
    principal: Principal,
    investments: Sequence[sroi.Investment],
    outcomes: Sequence[sroi.Outcome],
    rate: Decimal,
) -> sroi.SroiResult:
    if not principal.roles & REPORT_READERS:
        raise errors.RoleNotPermitted("this role does not compute business cases")
    return sroi.calculate(investments, outcomes, rate)

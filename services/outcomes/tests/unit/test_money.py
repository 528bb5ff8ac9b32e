"""Euro amounts as google.type.Money: whole units and nanos of the amount's sign, and back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from google.type.money_pb2 import Money  # type: ignore[import-untyped]

from outcomes.convert import money_pb, money_text
from servicekit.errors import Violations


@pytest.mark.parametrize(
    ("amount", "units", "nanos"),
    [
        ("4799999.80", 4_799_999, 800_000_000),
        ("-52215.01", -52_215, -10_000_000),  # a negative net social value
        ("-0.5", 0, -500_000_000),
        ("0.00", 0, 0),
        ("0.000001", 0, 1_000),
    ],
)
def test_an_amount_becomes_units_and_nanos_of_its_own_sign_and_comes_back(
    amount: str, units: int, nanos: int
) -> None:
    money = money_pb(Decimal(amount))
    assert money is not None
    assert (money.currency_code, money.units, money.nanos) == ("EUR", units, nanos)
    v = Violations()
    assert Decimal(money_text(money, "amount_money", v)) == Decimal(amount)
    assert not v


def test_a_stored_empty_amount_has_no_money() -> None:
    assert money_pb("") is None


@pytest.mark.parametrize(
    ("money", "reason"),
    [
        (Money(currency_code="USD", units=1), "UNSUPPORTED_CURRENCY"),
        (Money(currency_code="", units=1), "UNSUPPORTED_CURRENCY"),
        (Money(currency_code="EUR", units=1, nanos=-1), "INVALID_MONEY"),
        (Money(currency_code="EUR", units=0, nanos=1_000_000_000), "INVALID_MONEY"),
    ],
)
def test_money_of_another_currency_or_with_mixed_signs_is_refused(
    money: Money, reason: str
) -> None:
    v = Violations()
    assert money_text(money, "cost_record.actual_cost_money", v) == ""
    assert [(x.field, x.reason) for x in v.items] == [("cost_record.actual_cost_money", reason)]

"""Financing worked examples (reference §5), as the issue lists them."""

from __future__ import annotations

from decimal import Decimal

from outcomes import financing
from outcomes.financing import IndicatorTerm

M = Decimal(1_000_000)


def _gate(score: str, floor: str = "80") -> list[IndicatorTerm]:
    return [IndicatorTerm("DM2_HBA1C_MEASURED", Decimal(score), Decimal(90), Decimal(floor))]


def test_shared_savings_first_euro_pays_the_share_of_all_savings() -> None:
    result = financing.shared_savings(
        benchmark=100 * M,
        actual=94 * M,
        minimum_savings_rate=Decimal("0.02"),
        sharing_rate=Decimal("0.8"),
        first_euro=True,
        gate=_gate("85"),
    )
    assert result.total == Decimal("4800000.00")
    payout = result.lines[-1]
    assert payout.inputs["benchmark"] == "100000000" and payout.inputs["actual"] == "94000000"
    assert result.lines[0].amount == Decimal("6000000.00")


def test_shared_savings_above_threshold_shares_only_the_part_above_the_msr() -> None:
    result = financing.shared_savings(
        benchmark=100 * M,
        actual=94 * M,
        minimum_savings_rate=Decimal("0.02"),
        sharing_rate=Decimal("0.8"),
        first_euro=False,
    )
    assert result.total == Decimal("3200000.00")


def test_savings_below_the_minimum_savings_rate_pay_nothing() -> None:
    result = financing.shared_savings(
        benchmark=100 * M,
        actual=Decimal(98_500_000),
        minimum_savings_rate=Decimal("0.02"),
        sharing_rate=Decimal("0.8"),
        first_euro=True,
        gate=_gate("85"),
    )
    assert result.total == 0
    assert "below the minimum savings rate" in result.lines[-1].formula


def test_a_failed_quality_gate_pays_nothing() -> None:
    result = financing.shared_savings(
        benchmark=100 * M,
        actual=94 * M,
        minimum_savings_rate=Decimal("0.02"),
        sharing_rate=Decimal("0.8"),
        first_euro=True,
        gate=_gate("75"),
    )
    assert result.total == 0
    assert not result.quality_gate_met


def test_a_suppressed_gate_indicator_fails_the_gate() -> None:
    gate = [IndicatorTerm("X", None, Decimal(90), Decimal(80))]
    result = financing.shared_savings(
        benchmark=100 * M,
        actual=90 * M,
        minimum_savings_rate=Decimal("0.02"),
        sharing_rate=Decimal("0.5"),
        first_euro=True,
        gate=gate,
    )
    assert result.total == 0


def test_the_payout_cap_limits_the_payout() -> None:
    result = financing.shared_savings(
        benchmark=100 * M,
        actual=94 * M,
        minimum_savings_rate=Decimal("0.02"),
        sharing_rate=Decimal("0.8"),
        first_euro=True,
        cap=Decimal(3_000_000),
    )
    assert result.total == Decimal("3000000.00")


def test_pay_for_performance_pays_pro_rata_between_floor_and_target() -> None:
    terms = [
        IndicatorTerm("A", Decimal(85), Decimal(90), Decimal(80), Decimal(10_000)),  # halfway
        IndicatorTerm("B", Decimal(95), Decimal(90), Decimal(80), Decimal(20_000)),  # beyond target
        IndicatorTerm("C", Decimal(70), Decimal(90), Decimal(80), Decimal(30_000)),  # below floor
        IndicatorTerm("D", Decimal(82), Decimal(90), Decimal(80), Decimal(40_000)),  # 20 %
    ]
    result = financing.pay_for_performance(terms)
    assert [line.amount for line in result.lines] == [
        Decimal("5000.00"),
        Decimal("20000.00"),
        Decimal("0.00"),
        Decimal("8000.00"),
    ]
    assert result.total == Decimal("33000.00")
    assert result.lines[0].inputs["achievement"] == "0.5"


def test_pay_for_performance_on_a_lower_is_better_indicator() -> None:
    term = IndicatorTerm(
        "EXACERBATIONS",
        Decimal(55),
        Decimal(40),
        Decimal(70),
        Decimal(10_000),
        lower_is_better=True,
    )
    assert financing.achievement(term) == Decimal("0.5")


def test_without_a_floor_the_payment_is_all_or_nothing() -> None:
    below = IndicatorTerm("A", Decimal("89.9"), Decimal(90), Decimal(90), Decimal(1000))
    at = IndicatorTerm("A", Decimal(90), Decimal(90), Decimal(90), Decimal(1000))
    assert financing.pay_for_performance([below]).total == 0
    assert financing.pay_for_performance([at]).total == Decimal("1000.00")


def test_capitation_compares_the_budget_with_actual_cost() -> None:
    result = financing.capitation(
        per_person_year=Decimal("1200"), person_years=Decimal(1000), actual=Decimal(1_150_000)
    )
    assert result.lines[0].amount == Decimal("1200000.00")
    assert result.total == Decimal("50000.00")

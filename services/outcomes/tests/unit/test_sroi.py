"""SROI against a hand-computed case with discounting and drop-off."""

from __future__ import annotations

from decimal import Decimal

from outcomes import sroi


def test_sroi_matches_a_hand_computed_case() -> None:
    # Insurer invests 100,000. One outcome: 100 patients x 1,000 euro proxy, deadweight 20 %,
    # displacement 0, attribution 25 %, drop-off 10 %, 3 years, discount 3.5 %.
    # Year-1 impact = 100 x 1000 x 0.8 x 1 x 0.75 = 60,000
    # Year 2 = 54,000; year 3 = 48,600.
    # PV = 60000/1.035 + 54000/1.035^2 + 48600/1.035^3
    #    = 57971.0145 + 50409.5778 + 43834.4154 = 152215.01 (to the cent)
    result = sroi.calculate(
        [sroi.Investment("insurer", Decimal(100_000))],
        [
            sroi.Outcome(
                "insurer",
                "fewer admissions",
                Decimal(100),
                Decimal(1000),
                3,
                deadweight=Decimal("0.2"),
                attribution=Decimal("0.25"),
                drop_off=Decimal("0.1"),
            )
        ],
        Decimal("0.035"),
    )
    assert result.total_value == Decimal("152215.01")
    assert result.ratio == Decimal("1.5222")
    assert result.net_social_value == Decimal("52215.01")
    assert result.value_by_stakeholder == {"insurer": Decimal("152215.01")}
    assert result.lines[0].inputs["yearly_present_values"] == "57971.01;50409.58;43834.42"
    assert result.ratio_low < result.ratio < result.ratio_high


def test_value_is_reported_per_stakeholder() -> None:
    result = sroi.calculate(
        [sroi.Investment("care group", Decimal(50)), sroi.Investment("insurer", Decimal(50))],
        [
            sroi.Outcome("patients", "quality of life", Decimal(1), Decimal(100), 1),
            sroi.Outcome("insurer", "lower costs", Decimal(1), Decimal(200), 1),
        ],
        Decimal(0),
    )
    assert result.value_by_stakeholder["patients"] == Decimal("100.00")
    assert result.investment_by_stakeholder["care group"] == Decimal("50.00")
    assert result.ratio == Decimal("3.0000")

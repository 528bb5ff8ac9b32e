"""A contract's terms as the administrator sends them, and their checks: the indicators
(each pinned to a definition version, with agreed sources, floor, target and payment), the
financing model with its parameters, and the nine principles of seed 004 appendix 3."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from outcomes.base import amount_in_range, check_period
from outcomes.models import FinancingModel, SourceKind
from outcomes.unit_of_work import UnitOfWork
from servicekit import names
from servicekit.errors import Violations

# A target or floor is a score: a percentage, or events per 100 patient-years.
MAX_SCORE = 100_000

PRINCIPLES = (
    "scope",
    "financing_base",
    "financing_goal",
    "contract_form",
    "duration",
    "risk_allocation",
    "chain_partners",
    "reward_of_professionals",
    "condition_scope",
)


@dataclass(frozen=True)
class ContractIndicatorInput:
    indicator: str
    version: int
    sources: Sequence[SourceKind]
    target: float
    floor: float
    payment: str
    band: str = ""


@dataclass(frozen=True)
class ContractInput:
    display_name: str
    insurer_id: str
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    indicators: Sequence[ContractIndicatorInput]
    financing: dict[str, Any]
    principles: dict[str, str]


def decimal_field(
    value: str, field_name: str, v: Violations, *, required: bool = False, rate: bool = False
) -> None:
    if not value:
        if required:
            v.add(field_name, "is required", "AMOUNT_REQUIRED")
        return
    try:
        amount = Decimal(value)
    except InvalidOperation:
        v.add(field_name, "a decimal number", "INVALID_DECIMAL")
        return
    if not amount_in_range(amount) or amount < 0 or (rate and amount > 1):
        v.add(
            field_name,
            "between 0 and 1" if rate else "0, or between 1e-6 and 1e15",
            "INVALID_DECIMAL",
        )


def validate_contract(contract_id: str, data: ContractInput, v: Violations) -> None:
    if not names.valid_id(contract_id):
        v.add("contract_id", "2-63 lower-case letters, digits and dashes", "INVALID_CONTRACT_ID")
    if not data.display_name.strip() or len(data.display_name) > 200:
        v.add("contract.display_name", "1-200 characters", "DISPLAY_NAME_REQUIRED")
    if not names.valid_id(data.insurer_id):
        v.add("contract.insurer", "must look like organisations/{organisation}", "INVALID_INSURER")
    check_period(data.period_start, data.period_end, v, "contract.")
    if not data.indicators:
        v.add("contract.indicators", "at least one", "INDICATORS_REQUIRED")
    for key in PRINCIPLES:
        text = data.principles.get(key, "")
        if not text.strip() or len(text) > 2000:
            v.add(
                f"contract.principles.{key}",
                "is required (at most 2000 characters)",
                "PRINCIPLE_REQUIRED",
            )
    validate_financing(data, v)


def validate_financing(data: ContractInput, v: Violations) -> None:
    f = data.financing
    model = f.get("model")
    prefix = "contract.financing"
    if model not in {m.value for m in FinancingModel}:
        v.add(f"{prefix}.model", "is required", "FINANCING_MODEL_REQUIRED")
    if model == FinancingModel.SHARED_SAVINGS:
        decimal_field(
            f.get("minimum_savings_rate", ""),
            f"{prefix}.minimum_savings_rate",
            v,
            required=True,
            rate=True,
        )
        decimal_field(
            f.get("sharing_rate", ""), f"{prefix}.sharing_rate", v, required=True, rate=True
        )
        decimal_field(f.get("payout_cap", ""), f"{prefix}.payout_cap", v)
        if f.get("sharing_mode") not in ("first-euro", "above-threshold"):
            v.add(f"{prefix}.sharing_mode", "is required", "SHARING_MODE_REQUIRED")
        codes = {i.indicator for i in data.indicators}
        for code in f.get("quality_gate_indicators", []):
            if code not in codes:
                v.add(
                    f"{prefix}.quality_gate_indicators",
                    f"{code} is not in the contract",
                    "UNKNOWN_INDICATOR",
                )
    if model == FinancingModel.PARTIAL_CAPITATION:
        decimal_field(
            f.get("capitation_per_person_year", ""),
            f"{prefix}.capitation_per_person_year",
            v,
            required=True,
        )
    if model in (FinancingModel.FEE_FOR_SERVICE, FinancingModel.BUNDLED_PAYMENT):
        decimal_field(f.get("tariff", ""), f"{prefix}.tariff", v)


def contract_indicators(
    uow: UnitOfWork, data: ContractInput, v: Violations
) -> list[dict[str, Any]]:
    """The contract's indicator terms, each pinned to a definition version."""
    latest = uow.repo.latest_definitions()
    model = data.financing.get("model")
    terms = []
    for n, item in enumerate(data.indicators):
        prefix = f"contract.indicators[{n}]"
        record = (
            uow.repo.definition(item.indicator, item.version)
            if item.version
            else latest.get(item.indicator)
        )
        if record is None:
            v.add(f"{prefix}.indicator", "unknown indicator or version", "UNKNOWN_INDICATOR")
            continue
        definition = record.definition
        if not item.sources or len(set(item.sources)) != len(item.sources):
            v.add(f"{prefix}.agreed_sources", "at least one, each once", "AGREED_SOURCES_REQUIRED")
        for name, number in (("target", item.target), ("floor", item.floor)):
            if not math.isfinite(number) or not 0 <= number <= MAX_SCORE:
                v.add(f"{prefix}.{name}", f"a number from 0 to {MAX_SCORE}", "INVALID_NUMBER")
        if item.floor > item.target and definition.get("direction") != "lower_is_better":
            v.add(f"{prefix}.floor", "must not exceed the target", "INVALID_FLOOR")
        if model == FinancingModel.PAY_FOR_PERFORMANCE:
            decimal_field(item.payment, f"{prefix}.payment", v, required=True)
        labels = [b["label"] for b in definition["numerator"].get("bands", [])]
        needs_band = definition["kind"] == "bands" and (
            model == FinancingModel.PAY_FOR_PERFORMANCE or item.band
        )
        if needs_band and item.band not in labels:
            v.add(f"{prefix}.band", "name one of the indicator's bands", "INVALID_BAND")
        terms.append(
            {
                "indicator": record.code,
                "version": record.version,
                "sources": [s.value for s in item.sources],
                "target": item.target,
                "floor": item.floor,
                "payment": item.payment,
                "band": item.band,
                "direction": definition.get("direction", "higher_is_better"),
            }
        )
    return terms

"""Financing use cases: the insurer's cost records and a contract's evaluation (pay for
performance, shared savings, capitation) from a report of the period. The formulas are pure
functions in outcomes.financing."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from outcomes import errors, financing
from outcomes.base import ADMIN, INSURER, check_period
from outcomes.contract_terms import decimal_field
from outcomes.deps import Deps
from outcomes.models import CostRecord, FinancingModel, Report
from outcomes.use_cases.contracts import visible_contract
from outcomes.use_cases.reports import period_of, visible_report
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument, Violations


@dataclass(frozen=True)
class CostInput:
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    benchmark_cost: str
    actual_cost: str
    insured_person_years: str


def record_costs(deps: Deps, principal: Principal, contract_id: str, data: CostInput) -> CostRecord:
    v = Violations()
    check_period(data.period_start, data.period_end, v, "cost_record.")
    decimal_field(data.actual_cost, "cost_record.actual_cost", v, required=True)
    decimal_field(data.benchmark_cost, "cost_record.benchmark_cost", v)
    decimal_field(data.insured_person_years, "cost_record.insured_person_years", v)
    v.raise_if_any()
    now = deps.clock()
    with deps.uow() as uow:
        contract = visible_contract(uow, principal, contract_id)
        if not principal.has_role(INSURER, ADMIN):
            raise errors.RoleNotPermitted("costs are recorded by the contract's insurer")
        assert data.period_start is not None and data.period_end is not None
        record = CostRecord(
            id=uuid.uuid4().hex,
            contract_id=contract.id,
            period_start=data.period_start,
            period_end=data.period_end,
            benchmark_cost=data.benchmark_cost,
            actual_cost=data.actual_cost,
            insured_person_years=data.insured_person_years,
            recorded_by=principal.responsible_user,
            create_time=now,
        )
        uow.repo.add(record)
        uow.commit()
        return record


@dataclass(frozen=True)
class ContractEvaluation:
    model: str
    evaluation: financing.Evaluation
    report: Report | None  # the report scored against
    cost_record: CostRecord | None  # the costs used


def _total_score(cells: list[dict[str, Any]], code: str, band: str) -> Decimal | None:
    for c in cells:
        if (
            c["indicator"] == code
            and c["practice"] == ""
            and c["age_band"] == ""
            and c["sex"] == ""
            and c["band"] == band
        ):
            return None if c["score"] is None else Decimal(str(c["score"]))
    return None


def evaluate_contract(
    deps: Deps,
    principal: Principal,
    contract_id: str,
    period_start: dt.datetime | None,
    period_end: dt.datetime | None,
    report_id: str = "",
) -> ContractEvaluation:
    """The contract's financing for a period: scored against the report the caller names
    (of this contract and, when a period is given, of that period) or else the contract's
    latest report of the period, with the latest cost record of the period."""
    if not report_id:
        start, end = period_of(period_start, period_end)
    with deps.uow() as uow:
        contract = visible_contract(uow, principal, contract_id)
        terms = contract.terms
        model = terms["financing"]["model"]
        report = None
        if report_id:
            report = visible_report(uow, principal, report_id)
            if report.contract_id != contract.id:
                raise InvalidArgument.single(
                    "report", "is not a report of this contract", "REPORT_OF_OTHER_CONTRACT"
                )
            start, end = _period_of_report(report, period_start, period_end)
        elif model in (FinancingModel.PAY_FOR_PERFORMANCE, FinancingModel.SHARED_SAVINGS):
            report = uow.repo.latest_report(contract.id, start, end)
        costs = uow.repo.latest_costs(contract.id, start, end)
    cells = report.cells if report else []
    f = terms["financing"]
    definitions_dir = {t["indicator"]: t for t in terms["indicators"]}

    def term(code: str) -> financing.IndicatorTerm:
        t = definitions_dir[code]
        return financing.IndicatorTerm(
            indicator=code,
            score=_total_score(cells, code, t.get("band", "")),
            target=Decimal(str(t["target"])),
            floor=Decimal(str(t["floor"])),
            payment=Decimal(t["payment"] or "0"),
            lower_is_better=t.get("direction") == "lower_is_better",
        )

    if (
        model in (FinancingModel.PAY_FOR_PERFORMANCE, FinancingModel.SHARED_SAVINGS)
        and report is None
    ):
        raise errors.ReportRequired("compute a report for this contract and period first")
    if model == FinancingModel.PAY_FOR_PERFORMANCE:
        evaluation = financing.pay_for_performance([term(c) for c in definitions_dir])
    elif model == FinancingModel.SHARED_SAVINGS:
        if costs is None or not costs.benchmark_cost:
            raise errors.CostsRequired("the insurer has not recorded benchmark and actual costs")
        gate_codes = f.get("quality_gate_indicators") or list(definitions_dir)
        evaluation = financing.shared_savings(
            benchmark=Decimal(costs.benchmark_cost),
            actual=Decimal(costs.actual_cost),
            minimum_savings_rate=Decimal(f["minimum_savings_rate"]),
            sharing_rate=Decimal(f["sharing_rate"]),
            first_euro=f["sharing_mode"] == "first-euro",
            gate=[term(c) for c in gate_codes],
            cap=Decimal(f["payout_cap"]) if f.get("payout_cap") else None,
        )
    elif model == FinancingModel.PARTIAL_CAPITATION:
        if costs is None or not costs.insured_person_years:
            raise errors.CostsRequired(
                "the insurer has not recorded actual costs and insured person-years"
            )
        evaluation = financing.capitation(
            per_person_year=Decimal(f["capitation_per_person_year"]),
            person_years=Decimal(costs.insured_person_years),
            actual=Decimal(costs.actual_cost),
        )
    else:
        evaluation = financing.Evaluation(
            Decimal("0.00"),
            [
                financing.Line(
                    "recorded model",
                    Decimal("0.00"),
                    "fee for service and bundled payment are recorded, not evaluated",
                    {"tariff": f.get("tariff", "")},
                )
            ],
        )
    return ContractEvaluation(model, evaluation, report, costs)


def _period_of_report(
    report: Report, period_start: dt.datetime | None, period_end: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    """The period of an evaluation against a named report: the report's; a period the
    caller gives as well must be that one."""
    if period_start is None and period_end is None:
        return report.period_start, report.period_end
    start, end = period_of(period_start, period_end)
    if (start, end) != (report.period_start, report.period_end):
        raise InvalidArgument.single(
            "report", "is a report of another period", "REPORT_OF_OTHER_PERIOD"
        )
    return start, end

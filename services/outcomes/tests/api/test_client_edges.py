"""What an insurer's or a care group's client meets, over a real server with real tokens (the
second care group, cg-noord, so that nothing else the suite stores is counted): suppressed
cells carry no numbers, money travels as google.type.Money, EvaluateContract names the
report it used and takes the one it is given, and a page size above the maximum is capped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.type.money_pb2 import Money  # type: ignore[import-untyped]

from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes.deps import Deps
from outcomes.models import Contract, Programme, Sex
from outcomes.use_cases import enrolments
from servicekit.paging import MAX_PAGE_SIZE
from testkit.fixtures import Tokens, bearer
from testkit.rpc import failure

from .support import ts
from .test_access import END, START, contract

Metadata = tuple[tuple[str, str]]
CARE_GROUP = "cg-noord"
LATER = ts(dt.datetime(2026, 7, 1, tzinfo=dt.UTC))


def eur(units: int, nanos: int = 0) -> Money:
    return Money(currency_code="EUR", units=units, nanos=nanos)


@pytest.fixture(scope="module")
def admin(tokens: Tokens) -> Metadata:
    return bearer(tokens.user("admin.noord"))


@pytest.fixture(scope="module")
def region(deps: Deps) -> None:
    """44 DM2 patients of cg-noord, 40 at gp-noord and 4 at gp-noord-klein, each with one
    HbA1c from the lab, none at target (60-70 mmol/mol)."""
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    rows = []
    with deps.uow() as uow:
        for n in range(44):
            practice = "gp-noord" if n < 40 else "gp-noord-klein"
            patient = f"edge-{n:03d}"
            enrolments.store_enrolment(
                uow,
                CARE_GROUP,
                enrolments.EnrolmentInput(
                    patient,
                    Programme.DM2,
                    practice,
                    "01099999",
                    dt.datetime(2019, 1, 1, tzinfo=dt.UTC),
                    "",
                    1970,
                    Sex.FEMALE if n % 2 else Sex.MALE,
                ),
                now,
            )
            rows.append(
                (
                    CARE_GROUP,
                    patient,
                    "HBA1C",
                    float(60 + n % 11),
                    "mmol/mol",
                    dt.datetime(2025, 5, 1, tzinfo=dt.UTC),
                    "LAB",
                    "lab-noord",
                    f"edge-{n}",
                    now,
                )
            )
        uow.repo.insert_measurements(rows)
        uow.commit()


def _create(stub: rpc_grpc.OutcomesServiceStub, admin: Metadata, cid: str, c: pb.Contract) -> None:
    stub.CreateContract(
        rpc.CreateContractRequest(contract=c, contract_id=cid), metadata=admin, timeout=10
    )


def _compute(stub: rpc_grpc.OutcomesServiceStub, admin: Metadata, cid: str) -> pb.Report:
    report: pb.Report = stub.ComputeIndicators(
        rpc.ComputeIndicatorsRequest(
            contract=f"contracts/{cid}",
            period_start=START,
            period_end=END,
            stratifiers=[pb.STRATIFIER_PRACTICE],
        ),
        metadata=admin,
        timeout=60,
    )
    return report


def _fails(call: Callable[[], Any]) -> Any:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return failure(caught.value)


def test_a_suppressed_cell_carries_no_numbers_and_a_published_zero_is_a_real_zero(
    stub: rpc_grpc.OutcomesServiceStub, admin: Metadata, region: None
) -> None:
    _create(stub, admin, "edge-cells", contract("ins-noord"))
    report = _compute(stub, admin, "edge-cells")
    suppressed = [c for c in report.cells if c.suppression != pb.SUPPRESSION_NONE]
    published = [c for c in report.cells if c.suppression == pb.SUPPRESSION_NONE]
    assert suppressed and published
    # gp-noord-klein's 4 patients are a small cell
    assert any(c.practice == "organisations/gp-noord-klein" for c in suppressed)
    for c in suppressed:
        assert not c.HasField("values")
        assert (c.numerator, c.denominator, c.score) == (0, 0, 0.0)  # deprecated fields
    for c in published:
        assert c.HasField("values")
        eligible = c.values.denominator - c.values.exclusions
        assert c.values.HasField("score") == (eligible > 0)
        assert not c.values.HasField("patient_years")  # proportions only
    (total,) = [
        c
        for c in published
        if c.indicator == "DM2_HBA1C_AT_TARGET" and c.practice == "" and c.band == ""
    ]
    # nobody is at target: the published numerator and score are real zeros
    assert (total.values.numerator, total.values.denominator) == (0, 44)
    assert total.values.HasField("score") and total.values.score.value == 0.0
    streamed = list(
        stub.StreamReport(rpc.StreamReportRequest(name=report.name), metadata=admin, timeout=10)
    )
    assert [c.HasField("values") for c in streamed] == [c.HasField("values") for c in report.cells]


def test_a_withheld_source_discrepancy_count_is_unset_not_zero(
    stub: rpc_grpc.OutcomesServiceStub, admin: Metadata, region: None, deps: Deps
) -> None:
    # a second source for 5 of the patients: 5 compared patients is a small count
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    with deps.uow() as uow:
        uow.repo.insert_measurements(
            [
                (
                    CARE_GROUP,
                    f"edge-{n:03d}",
                    "HBA1C",
                    50.0,
                    "mmol/mol",
                    dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
                    "KIS",
                    "gp-noord",
                    f"edge-kis-{n}",
                    now,
                )
                for n in range(5)
            ]
        )
        uow.commit()
    reply = stub.GetSourceDiscrepancies(
        rpc.GetSourceDiscrepanciesRequest(period_start=START, period_end=END),
        metadata=admin,
        timeout=60,
    )
    withheld = [d for d in reply.discrepancies if d.suppression != pb.SUPPRESSION_NONE]
    assert withheld
    for d in withheld:
        assert not d.HasField("agreeing_patients") and not d.HasField("a_higher_patients")
        assert not d.HasField("b_higher_patients")
        assert (d.agree, d.a_higher, d.b_higher) == (0, 0, 0)
        assert d.HasField("compared_patients") == (d.patients_compared != 0)
    for d in reply.discrepancies:
        if d.suppression == pb.SUPPRESSION_NONE:
            assert d.HasField("compared_patients") and d.HasField("agreeing_patients")


def test_amounts_travel_as_money_both_ways(
    stub: rpc_grpc.OutcomesServiceStub, admin: Metadata, region: None
) -> None:
    c = contract("ins-noord")
    c.indicators[0].payment = ""
    c.indicators[0].payment_money.CopyFrom(eur(10000, 500_000_000))
    c.financing.CopyFrom(
        pb.FinancingTerms(
            model=pb.FINANCING_MODEL_SHARED_SAVINGS,
            minimum_savings_rate="0.02",
            sharing_rate="0.8",
            sharing_mode=pb.SHARING_MODE_FIRST_EURO,
            quality_gate_indicators=["DM2_HBA1C_MEASURED"],
            payout_cap_money=eur(5_000_000),
        )
    )
    c.indicators[0].floor = 0
    _create(stub, admin, "edge-money", c)
    got = stub.GetContract(
        rpc.GetContractRequest(name="contracts/edge-money"), metadata=admin, timeout=10
    )
    assert got.indicators[0].payment == "10000.5"
    assert got.indicators[0].payment_money == eur(10000, 500_000_000)
    assert got.indicators[1].payment_money == eur(20000)  # sent as a decimal string
    assert got.financing.payout_cap == "5000000"
    assert not got.financing.HasField("tariff_money")
    _compute(stub, admin, "edge-money")
    costs = stub.RecordCosts(
        rpc.RecordCostsRequest(
            parent="contracts/edge-money",
            cost_record=pb.CostRecord(
                period_start=START,
                period_end=END,
                benchmark_cost_money=eur(100_000_000),
                actual_cost_money=eur(94_000_000, 250_000_000),
            ),
        ),
        metadata=admin,
        timeout=10,
    )
    assert (costs.benchmark_cost, costs.actual_cost) == ("100000000", "94000000.25")
    assert costs.actual_cost_money == eur(94_000_000, 250_000_000)
    result = stub.EvaluateContract(
        rpc.EvaluateContractRequest(
            contract="contracts/edge-money", period_start=START, period_end=END
        ),
        metadata=admin,
        timeout=30,
    )
    # 0.8 x 5,999,999.75 = 4,799,999.80, capped at 5,000,000: not reached
    assert result.total_payment == "4799999.8"
    assert result.total_payment_money == eur(4_799_999, 800_000_000)
    by_label = {line.label: line for line in result.lines}
    assert by_label["gross savings"].money == eur(5_999_999, 750_000_000)
    assert not by_label["savings rate"].HasField("money")
    assert not by_label["quality gate: DM2_HBA1C_MEASURED"].HasField("money")
    assert result.evaluated_cost_record.name == costs.name


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (
            lambda c: c.indicators[0].payment_money.CopyFrom(eur(2)),
            "contract.indicators[0].payment_money",
            "AMOUNT_MISMATCH",
        ),
        (
            lambda c: c.indicators[0].payment_money.CopyFrom(
                Money(currency_code="USD", units=10000)
            ),
            "contract.indicators[0].payment_money",
            "UNSUPPORTED_CURRENCY",
        ),
        (
            lambda c: c.financing.tariff_money.CopyFrom(eur(1, -5)),
            "contract.financing.tariff_money",
            "INVALID_MONEY",
        ),
    ],
    ids=["differs", "currency", "signs"],
)
def test_money_that_is_not_the_amount_meant_is_invalid_argument(
    stub: rpc_grpc.OutcomesServiceStub,
    admin: Metadata,
    change: Callable[[pb.Contract], None],
    field: str,
    reason: str,
) -> None:
    c = contract("ins-noord")  # payment "10000"
    change(c)
    fail = _fails(lambda: _create(stub, admin, "edge-bad-money", c))
    assert fail.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fail.field_violations == (field,) and fail.reason == reason


def test_sroi_takes_and_gives_money(stub: rpc_grpc.OutcomesServiceStub, admin: Metadata) -> None:
    reply = stub.CalculateSroi(
        rpc.CalculateSroiRequest(
            investments=[rpc.SroiInvestment(stakeholder="insurer", amount_money=eur(100000))],
            outcomes=[
                rpc.SroiOutcome(
                    stakeholder="insurer",
                    quantity="100",
                    financial_proxy_money=eur(1000),
                    duration_years=3,
                    deadweight="0.2",
                    attribution="0.25",
                    drop_off="0.1",
                )
            ],
            discount_rate="0.035",
        ),
        metadata=admin,
        timeout=10,
    )
    assert reply.total_present_value == "152215.01"
    assert reply.total_present_value_money == eur(152215, 10_000_000)
    assert reply.total_investment_money == eur(100000)
    assert reply.net_social_value_money == eur(52215, 10_000_000)
    assert reply.stakeholders[0].present_value_money == eur(152215, 10_000_000)
    assert reply.lines[0].money == eur(152215, 10_000_000)


def test_evaluate_contract_names_the_report_it_used_and_takes_the_one_named(
    stub: rpc_grpc.OutcomesServiceStub, admin: Metadata, region: None
) -> None:
    _create(stub, admin, "edge-eval", contract("ins-noord"))
    first = _compute(stub, admin, "edge-eval")
    latest = _compute(stub, admin, "edge-eval")

    def evaluate(**fields: Any) -> rpc.EvaluateContractResponse:
        reply: rpc.EvaluateContractResponse = stub.EvaluateContract(
            rpc.EvaluateContractRequest(contract="contracts/edge-eval", **fields),
            metadata=admin,
            timeout=30,
        )
        return reply

    used = evaluate(period_start=START, period_end=END).evaluated_report
    assert used.name == latest.name and used.content_hash == latest.content_hash
    assert (used.period_start, used.period_end) == (START, END)
    assert used.data_cutoff_time == latest.data_cutoff_time and not used.cells
    named = evaluate(period_start=START, period_end=END, report=first.name)
    assert (named.report, named.evaluated_report.name) == (first.name, first.name)
    assert named.evaluated_report.content_hash == first.content_hash
    # a named report brings its own period
    alone = evaluate(report=first.name)
    assert alone.evaluated_report.name == first.name
    assert alone.total_payment == named.total_payment
    fail = _fails(lambda: evaluate(period_start=START, period_end=LATER, report=first.name))
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REPORT_OF_OTHER_PERIOD")
    fail = _fails(evaluate)
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PERIOD")


def test_a_page_size_above_the_maximum_is_capped_not_refused(
    stub: rpc_grpc.OutcomesServiceStub, admin: Metadata, deps: Deps
) -> None:
    _create(stub, admin, "edge-page-0000", contract("ins-noord"))
    with deps.uow() as uow:
        template = uow.repo.contract("edge-page-0000")
        assert template is not None
        for n in range(1, MAX_PAGE_SIZE + 5):
            uow.repo.session.add(
                Contract(
                    id=f"edge-page-{n:04d}",
                    care_group_id=CARE_GROUP,
                    insurer_id=template.insurer_id,
                    display_name=template.display_name,
                    period_start=template.period_start,
                    period_end=template.period_end,
                    terms_json=template.terms_json,
                    fingerprint="",
                    version=1,
                    create_time=template.create_time,
                    update_time=template.update_time,
                )
            )
        uow.commit()
    names: list[str] = []
    first = stub.ListContracts(
        rpc.ListContractsRequest(page_size=MAX_PAGE_SIZE * 5), metadata=admin, timeout=30
    )
    assert len(first.contracts) == MAX_PAGE_SIZE and first.next_page_token
    names += [c.name for c in first.contracts]
    token = first.next_page_token
    while token:
        page = stub.ListContracts(
            rpc.ListContractsRequest(page_size=MAX_PAGE_SIZE * 5, page_token=token),
            metadata=admin,
            timeout=30,
        )
        names += [c.name for c in page.contracts]
        token = page.next_page_token
    edge = [n for n in names if n.startswith("contracts/edge-page-")]
    assert edge == sorted(f"contracts/edge-page-{n:04d}" for n in range(MAX_PAGE_SIZE + 5))
    assert len(names) == len(set(names))
    fail = _fails(
        lambda: stub.ListContracts(rpc.ListContractsRequest(page_size=-1), metadata=admin)
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_SIZE")

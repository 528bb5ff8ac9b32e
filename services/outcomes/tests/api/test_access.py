"""Who reaches what: insurers only their own contracts' aggregates, never patient data;
practices their own strata; every error with exactly one ErrorInfo."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes.deps import Deps
from outcomes.models import Programme, Sex
from outcomes.use_cases import enrolments
from testkit.fixtures import Tokens, bearer
from testkit.rpc import failure

from .support import enrolment_request, row, ts

Metadata = tuple[tuple[str, str]]
START = ts(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
END = ts(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
PRINCIPLES = pb.ContractPrinciples(
    scope="s",
    financing_base="b",
    financing_goal="g",
    contract_form="f",
    duration="d",
    risk_allocation="r",
    chain_partners="c",
    reward_of_professionals="p",
    condition_scope="dm2",
)


def contract(insurer: str) -> pb.Contract:
    return pb.Contract(
        display_name=f"contract with {insurer}",
        insurer=f"organisations/{insurer}",
        period_start=START,
        period_end=END,
        indicators=[
            pb.ContractIndicator(
                indicator="DM2_HBA1C_MEASURED",
                agreed_sources=[pb.SOURCE_KIND_LAB, pb.SOURCE_KIND_KIS],
                target=90,
                floor=80,
                payment="10000",
            ),
            pb.ContractIndicator(
                indicator="DM2_HBA1C_AT_TARGET",
                agreed_sources=[pb.SOURCE_KIND_LAB],
                target=60,
                floor=40,
                payment="20000",
            ),
        ],
        financing=pb.FinancingTerms(model=pb.FINANCING_MODEL_PAY_FOR_PERFORMANCE),
        principles=PRINCIPLES,
    )


@pytest.fixture(scope="module")
def admin(tokens: Tokens) -> Metadata:
    return bearer(tokens.user("admin.zuidoost"))


@pytest.fixture(scope="module")
def insurer(tokens: Tokens) -> Metadata:
    return bearer(tokens.client("carenet-insurer"))


@pytest.fixture(scope="module")
def analyst(tokens: Tokens) -> Metadata:
    return bearer(tokens.user("analist.peters"))


@pytest.fixture(scope="module")
def contracts(stub: rpc_grpc.OutcomesServiceStub, admin: Metadata, deps: Deps) -> dict[str, str]:
    """A region of two practices, a contract with VGZ and one with another insurer, a report each."""
    import random

    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    rng = random.Random(3)
    rows = []
    with deps.uow() as uow:
        for n in range(120):
            practice, agb = ("gp-de-linde", "01012345") if n % 2 else ("gp-het-anker", "01054321")
            patient = f"acc-{n:03d}"
            enrolments.store_enrolment(
                uow,
                "cg-zuidoost",
                enrolments.EnrolmentInput(
                    patient,
                    Programme.DM2,
                    practice,
                    agb,
                    dt.datetime(2019, 1, 1, tzinfo=dt.UTC),
                    "",
                    rng.randint(1950, 1980),
                    rng.choice([Sex.FEMALE, Sex.MALE]),
                ),
                now,
            )
            if rng.random() < 0.8:
                rows.append(
                    (
                        "cg-zuidoost",
                        patient,
                        "HBA1C",
                        float(rng.randint(40, 70)),
                        "mmol/mol",
                        dt.datetime(2025, 5, 1, tzinfo=dt.UTC),
                        "LAB",
                        "lab-eindhoven",
                        f"acc-{n}",
                        now,
                    )
                )
        uow.repo.insert_measurements(rows)
        uow.commit()
    out = {}
    for cid, ins in (("acc-vgz", "ins-vgz"), ("acc-other", "ins-other")):
        stub.CreateContract(
            rpc.CreateContractRequest(contract=contract(ins), contract_id=cid),
            metadata=admin,
            timeout=10,
        )
        report = stub.ComputeIndicators(
            rpc.ComputeIndicatorsRequest(
                contract=f"contracts/{cid}",
                period_start=START,
                period_end=END,
                stratifiers=[pb.STRATIFIER_PRACTICE, pb.STRATIFIER_SEX],
            ),
            metadata=admin,
            timeout=60,
        )
        out[cid] = report.name
    return out


def _fails(call: Callable[[], Any]) -> Any:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    fail = failure(caught.value)
    assert fail.error_infos == 1 and fail.domain == "outcomes.carenet"
    return fail


def test_an_insurer_reads_its_own_contract_and_report(
    stub: rpc_grpc.OutcomesServiceStub, insurer: Metadata, contracts: dict[str, str]
) -> None:
    got = stub.GetContract(
        rpc.GetContractRequest(name="contracts/acc-vgz"), metadata=insurer, timeout=10
    )
    assert got.insurer == "organisations/ins-vgz"
    assert list(got.indicators[0].agreed_sources) == [pb.SOURCE_KIND_LAB, pb.SOURCE_KIND_KIS]
    assert got.principles.risk_allocation == "r"
    report = stub.GetReport(
        rpc.GetReportRequest(name=contracts["acc-vgz"]), metadata=insurer, timeout=10
    )
    assert report.cells and {c.practice for c in report.cells} >= {"", "organisations/gp-de-linde"}
    streamed = list(
        stub.StreamReport(
            rpc.StreamReportRequest(name=contracts["acc-vgz"]), metadata=insurer, timeout=10
        )
    )
    assert len(streamed) == report.cell_count == len(report.cells)


def test_an_insurer_cannot_read_another_insurers_contract_or_report(
    stub: rpc_grpc.OutcomesServiceStub,
    insurer: Metadata,
    analyst: Metadata,
    contracts: dict[str, str],
) -> None:
    for metadata in (insurer, analyst):

        def get_contract(m: Metadata = metadata) -> Any:
            request = rpc.GetContractRequest(name="contracts/acc-other")
            return stub.GetContract(request, metadata=m, timeout=10)

        def get_report(m: Metadata = metadata) -> Any:
            request = rpc.GetReportRequest(name=contracts["acc-other"])
            return stub.GetReport(request, metadata=m, timeout=10)

        def stream(m: Metadata = metadata) -> Any:
            request = rpc.StreamReportRequest(name=contracts["acc-other"])
            return list(stub.StreamReport(request, metadata=m, timeout=10))

        fail = _fails(get_contract)
        assert (fail.code, fail.reason) == (grpc.StatusCode.NOT_FOUND, "CONTRACT_NOT_FOUND")
        fail = _fails(get_report)
        assert (fail.code, fail.reason) == (grpc.StatusCode.NOT_FOUND, "REPORT_NOT_FOUND")
        assert _fails(stream).code == grpc.StatusCode.NOT_FOUND
        listed = stub.ListContracts(rpc.ListContractsRequest(), metadata=metadata, timeout=10)
        assert "contracts/acc-other" not in [c.name for c in listed.contracts]
        reports = stub.ListReports(rpc.ListReportsRequest(), metadata=metadata, timeout=10)
        assert contracts["acc-other"] not in [r.name for r in reports.reports]


def test_an_insurer_cannot_compute_a_scope_report_or_another_insurers(
    stub: rpc_grpc.OutcomesServiceStub, insurer: Metadata, contracts: dict[str, str]
) -> None:
    fail = _fails(
        lambda: stub.ComputeIndicators(
            rpc.ComputeIndicatorsRequest(period_start=START, period_end=END),
            metadata=insurer,
            timeout=30,
        )
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED")
    fail = _fails(
        lambda: stub.ComputeIndicators(
            rpc.ComputeIndicatorsRequest(
                contract="contracts/acc-other", period_start=START, period_end=END
            ),
            metadata=insurer,
            timeout=30,
        )
    )
    assert fail.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "call",
    [
        lambda s, m: s.IngestMeasurements(
            iter([rpc.IngestMeasurementsRequest(rows=[row("p-0001", "ins-1")])]),
            metadata=m,
            timeout=10,
        ),
        lambda s, m: s.ListMeasurements(
            rpc.ListMeasurementsRequest(parent="patients/p-0001"), metadata=m, timeout=10
        ),
        lambda s, m: s.ListEnrolments(
            rpc.ListEnrolmentsRequest(parent="patients/p-0001"), metadata=m, timeout=10
        ),
        lambda s, m: s.CreateEnrolment(enrolment_request("p-0001"), metadata=m, timeout=10),
        lambda s, m: s.BatchCreateEnrolments(
            rpc.BatchCreateEnrolmentsRequest(requests=[enrolment_request("p-0001")]),
            metadata=m,
            timeout=10,
        ),
    ],
    ids=[
        "IngestMeasurements",
        "ListMeasurements",
        "ListEnrolments",
        "CreateEnrolment",
        "BatchCreateEnrolments",
    ],
)
def test_an_insurer_token_cannot_call_any_rpc_with_patient_level_data(
    stub: rpc_grpc.OutcomesServiceStub, insurer: Metadata, call: Callable[[Any, Metadata], Any]
) -> None:
    fail = _fails(lambda: call(stub, insurer))
    assert (fail.code, fail.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "INSURER_NO_PATIENT_DATA",
    )


def test_no_patient_id_leaves_in_a_report(
    stub: rpc_grpc.OutcomesServiceStub, insurer: Metadata, contracts: dict[str, str]
) -> None:
    report = stub.GetReport(
        rpc.GetReportRequest(name=contracts["acc-vgz"]), metadata=insurer, timeout=10
    )
    assert "acc-0" not in str(report)
    for c in report.cells:
        assert c.suppression != pb.SUPPRESSION_UNSPECIFIED
        if c.suppression == pb.SUPPRESSION_NONE:
            assert not 0 < c.numerator < 10 and not 0 < c.denominator < 10
        else:
            assert (c.numerator, c.denominator, c.score) == (0, 0, 0.0)


def test_a_practice_sees_its_own_strata_and_the_totals(
    stub: rpc_grpc.OutcomesServiceStub, tokens: Tokens, contracts: dict[str, str]
) -> None:
    report = stub.GetReport(
        rpc.GetReportRequest(name=contracts["acc-vgz"]),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=10,
    )
    practices = {c.practice for c in report.cells}
    assert practices == {"", "organisations/gp-de-linde"}
    other = stub.GetReport(
        rpc.GetReportRequest(name=contracts["acc-vgz"]),
        metadata=bearer(tokens.user("dr.devries")),
        timeout=10,
    )
    assert {c.practice for c in other.cells} == {"", "organisations/gp-het-anker"}


def test_a_patient_token_reads_no_reports(
    stub: rpc_grpc.OutcomesServiceStub, tokens: Tokens, contracts: dict[str, str]
) -> None:
    fail = _fails(
        lambda: stub.GetReport(
            rpc.GetReportRequest(name=contracts["acc-vgz"]),
            metadata=bearer(tokens.user("pat.dewit")),
            timeout=10,
        )
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED")


def test_a_call_without_a_token_is_unauthenticated(stub: rpc_grpc.OutcomesServiceStub) -> None:
    fail = _fails(lambda: stub.ListContracts(rpc.ListContractsRequest(), timeout=10))
    assert (fail.code, fail.reason) == (grpc.StatusCode.UNAUTHENTICATED, "MISSING_TOKEN")


def test_a_report_verifies_and_the_insurer_evaluates_its_contract(
    stub: rpc_grpc.OutcomesServiceStub, insurer: Metadata, contracts: dict[str, str]
) -> None:
    verified = stub.VerifyReport(
        rpc.VerifyReportRequest(name=contracts["acc-vgz"]), metadata=insurer, timeout=30
    )
    assert verified.reproduced and verified.stored_hash == verified.recomputed_hash
    result = stub.EvaluateContract(
        rpc.EvaluateContractRequest(
            contract="contracts/acc-vgz", period_start=START, period_end=END
        ),
        metadata=insurer,
        timeout=30,
    )
    assert result.model == pb.FINANCING_MODEL_PAY_FOR_PERFORMANCE
    assert result.report == contracts["acc-vgz"]
    assert len(result.lines) == 2 and all("score" in line.inputs for line in result.lines)


def test_shared_savings_are_evaluated_from_the_insurers_recorded_costs(
    stub: rpc_grpc.OutcomesServiceStub,
    admin: Metadata,
    insurer: Metadata,
    contracts: dict[str, str],
) -> None:
    c = contract("ins-vgz")
    c.financing.CopyFrom(
        pb.FinancingTerms(
            model=pb.FINANCING_MODEL_SHARED_SAVINGS,
            minimum_savings_rate="0.02",
            sharing_rate="0.8",
            sharing_mode=pb.SHARING_MODE_FIRST_EURO,
            quality_gate_indicators=["DM2_HBA1C_MEASURED"],
        )
    )
    c.indicators[0].floor = 0
    stub.CreateContract(
        rpc.CreateContractRequest(contract=c, contract_id="acc-ss"), metadata=admin, timeout=10
    )
    stub.ComputeIndicators(
        rpc.ComputeIndicatorsRequest(
            contract="contracts/acc-ss", period_start=START, period_end=END
        ),
        metadata=insurer,
        timeout=60,
    )
    stub.RecordCosts(
        rpc.RecordCostsRequest(
            parent="contracts/acc-ss",
            cost_record=pb.CostRecord(
                period_start=START,
                period_end=END,
                benchmark_cost="100000000",
                actual_cost="94000000",
            ),
        ),
        metadata=insurer,
        timeout=10,
    )
    result = stub.EvaluateContract(
        rpc.EvaluateContractRequest(
            contract="contracts/acc-ss", period_start=START, period_end=END
        ),
        metadata=insurer,
        timeout=30,
    )
    assert result.total_payment == "4800000"
    assert result.quality_gate_met
    assert result.lines[-1].inputs["benchmark"] == "100000000"


def test_a_contract_without_its_principles_is_refused(
    stub: rpc_grpc.OutcomesServiceStub, admin: Metadata
) -> None:
    c = contract("ins-vgz")
    c.principles.risk_allocation = ""
    fail = _fails(
        lambda: stub.CreateContract(
            rpc.CreateContractRequest(contract=c, contract_id="acc-bad"), metadata=admin, timeout=10
        )
    )
    assert fail.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fail.field_violations == ("contract.principles.risk_allocation",)


def test_sroi_is_calculated_for_a_business_case(
    stub: rpc_grpc.OutcomesServiceStub, admin: Metadata
) -> None:
    reply = stub.CalculateSroi(
        rpc.CalculateSroiRequest(
            investments=[rpc.SroiInvestment(stakeholder="insurer", amount="100000")],
            outcomes=[
                rpc.SroiOutcome(
                    stakeholder="insurer",
                    quantity="100",
                    financial_proxy="1000",
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
    assert (reply.total_present_value, reply.ratio, reply.net_social_value) == (
        "152215.01",
        "1.5222",
        "52215.01",
    )

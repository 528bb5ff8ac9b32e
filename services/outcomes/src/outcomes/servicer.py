"""gRPC adapter of the outcomes service: proto in, use case, proto out. No try/except:
domain errors are mapped by the error interceptor; conversions are in convert.py."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes import positions
from outcomes.codes import code_table
from outcomes.convert import (
    MODELS,
    STRATIFIERS,
    amount_of,
    cell_pb,
    code_pb,
    contract_input,
    contract_pb,
    cost_pb,
    definition_pb,
    discrepancy_pb,
    enrolment_input,
    enrolment_pb,
    ingest_result_pb,
    line_pb,
    measurement_pb,
    money_pb,
    report_pb,
    row_values,
    sroi_input,
    sroi_pb,
)
from outcomes.deps import Deps
from outcomes.financing import fmt
from outcomes.use_cases import (
    contracts,
    discrepancies,
    enrolments,
    financing,
    indicators,
    measurements,
    reports,
    sroi,
)
from servicekit import enums, names
from servicekit.auth import current_principal
from servicekit.errors import InvalidArgument, Violations
from servicekit.idempotency import IdempotentRequest
from servicekit.paging import Paging
from servicekit.service_server import Servicer
from servicekit.timestamps import field_from_request


class OutcomesServicer(Servicer[Deps], rpc_grpc.OutcomesServiceServicer):
    # enrolments
    def CreateEnrolment(
        self, request: rpc.CreateEnrolmentRequest, context: grpc.ServicerContext
    ) -> pb.Enrolment:
        data = enrolment_input(request.parent, request.enrolment)
        return enrolment_pb(enrolments.create_enrolment(self.deps, current_principal(), data))

    def BatchCreateEnrolments(
        self, request: rpc.BatchCreateEnrolmentsRequest, context: grpc.ServicerContext
    ) -> rpc.BatchCreateEnrolmentsResponse:
        items = [
            enrolment_input(r.parent, r.enrolment, f"requests[{n}].enrolment")
            for n, r in enumerate(request.requests)
        ]
        results = enrolments.batch_create_enrolments(self.deps, current_principal(), items)
        return rpc.BatchCreateEnrolmentsResponse(
            results=[
                rpc.EnrolmentResult(
                    patient=f"patients/{r.patient_id}",
                    enrolment=enrolment_pb(r.enrolment) if r.enrolment else None,
                    rejection_reason=r.rejection_reason,
                )
                for r in results
            ]
        )

    def ListEnrolments(
        self, request: rpc.ListEnrolmentsRequest, context: grpc.ServicerContext
    ) -> rpc.ListEnrolmentsResponse:
        patient_id = names.parse_one(request.parent, "patients", field="parent")
        paging = Paging(request, "enrolments", patient_id, position=positions.ROW)
        page = enrolments.list_enrolments(self.deps, current_principal(), patient_id, paging.page)
        return paging.reply(rpc.ListEnrolmentsResponse, "enrolments", page, enrolment_pb)

    # measurements
    def IngestMeasurements(
        self,
        request_iterator: Iterator[rpc.IngestMeasurementsRequest],
        context: grpc.ServicerContext,
    ) -> rpc.IngestMeasurementsResponse:
        job = measurements.Ingest(self.deps, current_principal())
        for message in request_iterator:
            job.feed_values(row_values(message.rows))
        return ingest_result_pb(job.finish())

    def ListMeasurements(
        self, request: rpc.ListMeasurementsRequest, context: grpc.ServicerContext
    ) -> rpc.ListMeasurementsResponse:
        patient_id = names.parse_one(request.parent, "patients", field="parent")
        paging = Paging(request, "measurements", patient_id, position=positions.ROW)
        page = measurements.list_measurements(
            self.deps, current_principal(), patient_id, paging.page
        )
        return paging.reply(rpc.ListMeasurementsResponse, "measurements", page, measurement_pb)

    def ListMeasurementCodes(
        self, request: rpc.ListMeasurementCodesRequest, context: grpc.ServicerContext
    ) -> rpc.ListMeasurementCodesResponse:
        current_principal()
        return rpc.ListMeasurementCodesResponse(codes=[code_pb(c) for c in code_table().values()])

    # indicators
    def GetIndicatorDefinition(
        self, request: rpc.GetIndicatorDefinitionRequest, context: grpc.ServicerContext
    ) -> pb.IndicatorDefinition:
        code, version = names.parse(request.name, "indicators", "versions")
        if not version.isdigit():
            raise InvalidArgument.single("name", "the version is a number", "INVALID_RESOURCE_NAME")
        return definition_pb(
            indicators.get_definition(self.deps, current_principal(), code, int(version))
        )

    def ListIndicatorDefinitions(
        self, request: rpc.ListIndicatorDefinitionsRequest, context: grpc.ServicerContext
    ) -> rpc.ListIndicatorDefinitionsResponse:
        paging = Paging(request, "definitions", position=positions.DEFINITION)
        page = indicators.list_definitions(self.deps, current_principal(), paging.page)
        return paging.reply(
            rpc.ListIndicatorDefinitionsResponse, "indicator_definitions", page, definition_pb
        )

    # contracts
    def CreateContract(
        self, request: rpc.CreateContractRequest, context: grpc.ServicerContext
    ) -> pb.Contract:
        principal = current_principal()
        contract = contracts.create_contract(
            self.deps,
            principal,
            request.contract_id,
            contract_input(request.contract),
            IdempotentRequest.from_message(principal, request, "CreateContract"),
        )
        return contract_pb(contract)

    def GetContract(
        self, request: rpc.GetContractRequest, context: grpc.ServicerContext
    ) -> pb.Contract:
        contract_id = names.parse_one(request.name, "contracts")
        return contract_pb(contracts.get_contract(self.deps, current_principal(), contract_id))

    def ListContracts(
        self, request: rpc.ListContractsRequest, context: grpc.ServicerContext
    ) -> rpc.ListContractsResponse:
        paging = Paging(request, "contracts", position=positions.CONTRACT)
        page = contracts.list_contracts(self.deps, current_principal(), paging.page)
        return paging.reply(rpc.ListContractsResponse, "contracts", page, contract_pb)

    # reports
    def ComputeIndicators(
        self, request: rpc.ComputeIndicatorsRequest, context: grpc.ServicerContext
    ) -> pb.Report:
        contract_id = (
            names.parse_one(request.contract, "contracts", field="contract")
            if request.contract
            else ""
        )
        stratifiers = [
            s
            for s in (enums.from_proto(STRATIFIERS, x, "stratifiers") for x in request.stratifiers)
            if s
        ]
        principal = current_principal()
        report = reports.compute_indicators(
            self.deps,
            principal,
            contract_id,
            field_from_request(request, "period_start", "period_start"),
            field_from_request(request, "period_end", "period_end"),
            stratifiers,
        )
        return report_pb(report, reports.visible_cells(principal, report))

    def GetReport(self, request: rpc.GetReportRequest, context: grpc.ServicerContext) -> pb.Report:
        report_id = names.parse_one(request.name, "reports")
        report, cells = reports.get_report(self.deps, current_principal(), report_id)
        return report_pb(report, cells)

    def ListReports(
        self, request: rpc.ListReportsRequest, context: grpc.ServicerContext
    ) -> rpc.ListReportsResponse:
        contract_id = (
            names.parse_one(request.contract, "contracts", field="contract")
            if request.contract
            else ""
        )
        paging = Paging(request, "reports", contract_id, position=positions.REPORT)
        page = reports.list_reports(self.deps, current_principal(), contract_id, paging.page)
        return paging.reply(rpc.ListReportsResponse, "reports", page, lambda r: report_pb(r, None))

    def StreamReport(
        self, request: rpc.StreamReportRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ReportCell]:
        report_id = names.parse_one(request.name, "reports")
        for cell in reports.stream_report(self.deps, current_principal(), report_id):
            yield cell_pb(cell)

    def VerifyReport(
        self, request: rpc.VerifyReportRequest, context: grpc.ServicerContext
    ) -> rpc.VerifyReportResponse:
        report_id = names.parse_one(request.name, "reports")
        v = reports.verify_report(self.deps, current_principal(), report_id)
        return rpc.VerifyReportResponse(
            reproduced=v.reproduced, stored_hash=v.stored_hash, recomputed_hash=v.recomputed_hash
        )

    def GetSourceDiscrepancies(
        self, request: rpc.GetSourceDiscrepanciesRequest, context: grpc.ServicerContext
    ) -> rpc.GetSourceDiscrepanciesResponse:
        contract_id = (
            names.parse_one(request.contract, "contracts", field="contract")
            if request.contract
            else ""
        )
        found = discrepancies.source_discrepancies(
            self.deps,
            current_principal(),
            contract_id,
            field_from_request(request, "period_start", "period_start"),
            field_from_request(request, "period_end", "period_end"),
        )
        return rpc.GetSourceDiscrepanciesResponse(discrepancies=[discrepancy_pb(d) for d in found])

    # financing
    def RecordCosts(
        self, request: rpc.RecordCostsRequest, context: grpc.ServicerContext
    ) -> pb.CostRecord:
        contract_id = names.parse_one(request.parent, "contracts", field="parent")
        c = request.cost_record
        v = Violations()
        data = financing.CostInput(
            period_start=field_from_request(c, "period_start", "cost_record.period_start"),
            period_end=field_from_request(c, "period_end", "cost_record.period_end"),
            benchmark_cost=amount_of(c, "benchmark_cost", "cost_record.benchmark_cost", v),
            actual_cost=amount_of(c, "actual_cost", "cost_record.actual_cost", v),
            insured_person_years=c.insured_person_years,
        )
        v.raise_if_any()
        return cost_pb(financing.record_costs(self.deps, current_principal(), contract_id, data))

    def EvaluateContract(
        self, request: rpc.EvaluateContractRequest, context: grpc.ServicerContext
    ) -> rpc.EvaluateContractResponse:
        contract_id = names.parse_one(request.contract, "contracts", field="contract")
        report_id = (
            names.parse_one(request.report, "reports", field="report") if request.report else ""
        )
        result = financing.evaluate_contract(
            self.deps,
            current_principal(),
            contract_id,
            field_from_request(request, "period_start", "period_start"),
            field_from_request(request, "period_end", "period_end"),
            report_id,
        )
        report, costs = result.report, result.cost_record
        return rpc.EvaluateContractResponse(
            model=pb.FinancingModel.ValueType(MODELS.to_proto(result.model)),
            total_payment=fmt(result.evaluation.total),
            lines=[line_pb(line) for line in result.evaluation.lines],
            report=f"reports/{report.id}" if report else "",
            cost_record=f"contracts/{contract_id}/costs/{costs.id}" if costs else "",
            quality_gate_met=result.evaluation.quality_gate_met,
            total_payment_money=money_pb(result.evaluation.total),
            evaluated_report=report_pb(report, None) if report else None,
            evaluated_cost_record=cost_pb(costs) if costs else None,
        )

    def CalculateSroi(
        self, request: rpc.CalculateSroiRequest, context: grpc.ServicerContext
    ) -> rpc.CalculateSroiResponse:
        investments, outcomes = sroi_input(request)
        result = sroi.calculate_sroi(
            current_principal(), investments, outcomes, request.discount_rate
        )
        return sroi_pb(result)

"""gRPC adapter of the outcomes service: proto in, use case, proto out. No try/except:
domain errors are mapped by the error interceptor."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import grpc

from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes import financing, models, service, sroi
from outcomes.codes import code_table
from servicekit import enums, names
from servicekit.auth import current_principal
from servicekit.errors import InvalidArgument, Violations
from servicekit.paging import Pager
from servicekit.timestamps import from_proto, to_proto

PROGRAMMES = {
    pb.PROGRAMME_DM2: models.Programme.DM2,
    pb.PROGRAMME_COPD: models.Programme.COPD,
    pb.PROGRAMME_CVRM: models.Programme.CVRM,
}
PROGRAMMES_OUT = {v.value: k for k, v in PROGRAMMES.items()}
SEXES = {
    pb.SEX_FEMALE: models.Sex.FEMALE,
    pb.SEX_MALE: models.Sex.MALE,
    pb.SEX_OTHER: models.Sex.OTHER,
}
SEXES_OUT = {v.value: k for k, v in SEXES.items()}
SOURCES = {
    pb.SOURCE_KIND_KIS: models.SourceKind.KIS,
    pb.SOURCE_KIND_LAB: models.SourceKind.LAB,
    pb.SOURCE_KIND_HOSPITAL: models.SourceKind.HOSPITAL,
    pb.SOURCE_KIND_INSURER_CLAIMS: models.SourceKind.INSURER_CLAIMS,
    pb.SOURCE_KIND_LIFESTYLE_PROVIDER: models.SourceKind.LIFESTYLE_PROVIDER,
    pb.SOURCE_KIND_PATIENT: models.SourceKind.PATIENT,
}
SOURCES_OUT = {v.value: k for k, v in SOURCES.items()}
MODELS = {
    pb.FINANCING_MODEL_PAY_FOR_PERFORMANCE: models.FinancingModel.PAY_FOR_PERFORMANCE,
    pb.FINANCING_MODEL_SHARED_SAVINGS: models.FinancingModel.SHARED_SAVINGS,
    pb.FINANCING_MODEL_PARTIAL_CAPITATION: models.FinancingModel.PARTIAL_CAPITATION,
    pb.FINANCING_MODEL_FEE_FOR_SERVICE: models.FinancingModel.FEE_FOR_SERVICE,
    pb.FINANCING_MODEL_BUNDLED_PAYMENT: models.FinancingModel.BUNDLED_PAYMENT,
}
MODELS_OUT = {v.value: k for k, v in MODELS.items()}
SHARING = {
    pb.SHARING_MODE_FIRST_EURO: "first-euro",
    pb.SHARING_MODE_ABOVE_THRESHOLD: "above-threshold",
}
SHARING_OUT = {v: k for k, v in SHARING.items()}
STRATIFIERS = {
    pb.STRATIFIER_PRACTICE: models.Stratifier.PRACTICE,
    pb.STRATIFIER_AGE_BAND: models.Stratifier.AGE_BAND,
    pb.STRATIFIER_SEX: models.Stratifier.SEX,
}
STRATIFIERS_OUT = {v.value: k for k, v in STRATIFIERS.items()}
SUPPRESSION_OUT = {
    "none": pb.SUPPRESSION_NONE,
    "primary": pb.SUPPRESSION_PRIMARY,
    "complementary": pb.SUPPRESSION_COMPLEMENTARY,
}
OUTCOMES_OUT = {
    "accepted": rpc.ROW_OUTCOME_ACCEPTED,
    "duplicate": rpc.ROW_OUTCOME_DUPLICATE,
    "rejected": rpc.ROW_OUTCOME_REJECTED,
}


def _time(message: Any, field: str) -> dt.datetime | None:
    return from_proto(getattr(message, field), message.HasField(field))


def _decimal(text: str, field: str, v: Violations, default: str = "0") -> Decimal:
    try:
        value = Decimal(text or default)
    except InvalidOperation:
        v.add(field, "a decimal number", "INVALID_DECIMAL")
        return Decimal(0)
    if not value.is_finite():
        v.add(field, "a finite decimal number", "INVALID_DECIMAL")
        return Decimal(0)
    return value


# ---------------------------------------------------------------- to proto


def enrolment_pb(e: models.Enrolment) -> pb.Enrolment:
    return pb.Enrolment(
        name=f"patients/{e.patient_id}/enrolments/{e.programme.lower()}",
        programme=PROGRAMMES_OUT[e.programme],
        practice=f"organisations/{e.practice_id}",
        practice_agb=e.practice_agb,
        start_time=to_proto(e.start_time),
        main_practitioner=e.main_practitioner,
        birth_year=e.birth_year,
        sex=SEXES_OUT[e.sex],
        create_time=to_proto(e.create_time),
        update_time=to_proto(e.create_time),
    )


def measurement_pb(m: models.Measurement) -> pb.Measurement:
    return pb.Measurement(
        name=f"patients/{m.patient_id}/measurements/{m.id}",
        code=m.code,
        value=m.value,
        unit=m.unit,
        measure_time=to_proto(m.measured_at),
        source=pb.MeasurementSource(
            kind=SOURCES_OUT[m.source_kind], organisation=f"organisations/{m.source_org}"
        ),
        source_record_id=m.source_record_id,
        create_time=to_proto(m.ingested_at),
    )


def definition_pb(d: models.IndicatorDefinitionRecord) -> pb.IndicatorDefinition:
    return pb.IndicatorDefinition(
        name=f"indicators/{d.code}/versions/{d.version}",
        code=d.code,
        version=d.version,
        title=d.title,
        condition=PROGRAMMES_OUT.get(d.condition, pb.PROGRAMME_UNSPECIFIED),
        definition_json=d.definition_json,
        content_hash=d.content_hash,
        create_time=to_proto(d.create_time),
    )


def contract_pb(c: models.Contract) -> pb.Contract:
    terms = c.terms
    f = terms["financing"]
    return pb.Contract(
        name=f"contracts/{c.id}",
        display_name=c.display_name,
        care_group=f"organisations/{c.care_group_id}",
        insurer=f"organisations/{c.insurer_id}",
        period_start=to_proto(c.period_start),
        period_end=to_proto(c.period_end),
        indicators=[
            pb.ContractIndicator(
                indicator=t["indicator"],
                version=t["version"],
                agreed_sources=[SOURCES_OUT[s] for s in t["sources"]],
                target=t["target"],
                floor=t["floor"],
                payment=t["payment"],
                band=t.get("band", ""),
            )
            for t in terms["indicators"]
        ],
        financing=pb.FinancingTerms(
            model=MODELS_OUT[f["model"]],
            minimum_savings_rate=f.get("minimum_savings_rate", ""),
            sharing_rate=f.get("sharing_rate", ""),
            sharing_mode=SHARING_OUT.get(f.get("sharing_mode", ""), pb.SHARING_MODE_UNSPECIFIED),
            quality_gate_indicators=f.get("quality_gate_indicators", []),
            payout_cap=f.get("payout_cap", ""),
            capitation_per_person_year=f.get("capitation_per_person_year", ""),
            tariff=f.get("tariff", ""),
            notes=f.get("notes", ""),
        ),
        principles=pb.ContractPrinciples(**terms["principles"]),
        create_time=to_proto(c.create_time),
        update_time=to_proto(c.update_time),
        etag=c.etag,
    )


def cell_pb(c: Mapping[str, Any]) -> pb.ReportCell:
    return pb.ReportCell(
        indicator=c["indicator"],
        version=c["version"],
        practice=f"organisations/{c['practice']}" if c["practice"] else "",
        age_band=c["age_band"],
        sex=SEXES_OUT.get(c["sex"], pb.SEX_UNSPECIFIED),
        band=c["band"],
        numerator=c["numerator"] or 0,
        denominator=c["denominator"] or 0,
        exclusions=c["exclusions"] or 0,
        score=c["score"] or 0.0,
        ci_low=c["ci_low"] or 0.0,
        ci_high=c["ci_high"] or 0.0,
        suppression=SUPPRESSION_OUT[c["suppression"]],
        patient_years=c["patient_years"] or 0.0,
    )


def report_pb(r: models.Report, cells: list[dict[str, Any]] | None) -> pb.Report:
    inputs = r.inputs
    return pb.Report(
        name=f"reports/{r.id}",
        care_group=f"organisations/{r.care_group_id}",
        contract=f"contracts/{r.contract_id}" if r.contract_id else "",
        period_start=to_proto(r.period_start),
        period_end=to_proto(r.period_end),
        stratifiers=[STRATIFIERS_OUT[s] for s in inputs["stratifiers"]],
        definition_versions=[
            f"indicators/{p['indicator']}/versions/{p['version']}" for p in inputs["plan"]
        ],
        data_cutoff_time=to_proto(r.data_cutoff),
        content_hash=r.content_hash,
        cell_count=r.cell_count,
        cells=[cell_pb(c) for c in cells or []],
        create_time=to_proto(r.create_time),
    )


def cost_pb(c: models.CostRecord) -> pb.CostRecord:
    return pb.CostRecord(
        name=f"contracts/{c.contract_id}/costs/{c.id}",
        period_start=to_proto(c.period_start),
        period_end=to_proto(c.period_end),
        benchmark_cost=c.benchmark_cost,
        actual_cost=c.actual_cost,
        insured_person_years=c.insured_person_years,
        create_time=to_proto(c.create_time),
    )


def line_pb(line: financing.Line) -> rpc.AmountLine:
    return rpc.AmountLine(
        label=line.label,
        amount=financing.fmt(line.amount),
        formula=line.formula,
        inputs=dict(line.inputs),
    )


# ---------------------------------------------------------------- from proto


def _enrolment_input(
    parent: str, e: pb.Enrolment, prefix: str = "enrolment"
) -> service.EnrolmentInput:
    patient_id = names.parse_one(parent, "patients", field="parent")
    return service.EnrolmentInput(
        patient_id=patient_id,
        programme=enums.from_proto(PROGRAMMES, e.programme, f"{prefix}.programme"),
        practice_id=names.optional_id(e.practice, "organisations", f"{prefix}.practice"),
        practice_agb=e.practice_agb,
        start_time=_time(e, "start_time"),
        main_practitioner=e.main_practitioner,
        birth_year=e.birth_year,
        sex=enums.from_proto(SEXES, e.sex, f"{prefix}.sex"),
    )


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


SOURCE_VALUES = {k: v.value for k, v in SOURCES.items()}
# The range of datetime (and of protobuf's Timestamp), in microseconds since 1970-01-01.
_MIN_MICROS = (dt.datetime.min.replace(tzinfo=dt.UTC) - EPOCH) // dt.timedelta(microseconds=1)
_MAX_MICROS = (dt.datetime.max.replace(tzinfo=dt.UTC) - EPOCH) // dt.timedelta(microseconds=1)


def _row_values(rows: Iterable[rpc.MeasurementRow]) -> list[service.RowValues]:
    """The rows as the ingest checks them, read field by field without building datetimes.
    A measure time outside the range of datetime raises OverflowError."""
    kinds = SOURCE_VALUES
    values: list[service.RowValues] = []
    append = values.append
    for r in rows:
        ts = r.measure_time
        seconds, nanos = ts.seconds, ts.nanos
        micros: int | None = None
        if seconds or nanos or r.HasField("measure_time"):
            micros = seconds * 1_000_000 + nanos // 1000
            if not _MIN_MICROS <= micros <= _MAX_MICROS:
                raise OverflowError("measure_time out of range")
        source = r.source
        append(
            (
                r.patient,
                r.code,
                r.value,
                r.unit,
                micros,
                kinds.get(source.kind),
                source.organisation,
                r.source_record_id,
            )
        )
    return values


def _contract_input(c: pb.Contract) -> service.ContractInput:
    f = c.financing
    model = enums.from_proto(MODELS, f.model, "contract.financing.model")
    return service.ContractInput(
        display_name=c.display_name,
        insurer_id=names.optional_id(c.insurer, "organisations", "contract.insurer"),
        period_start=_time(c, "period_start"),
        period_end=_time(c, "period_end"),
        indicators=[
            service.ContractIndicatorInput(
                indicator=i.indicator,
                version=i.version,
                sources=[
                    s
                    for s in (
                        enums.from_proto(SOURCES, k, f"contract.indicators[{n}].agreed_sources")
                        for k in i.agreed_sources
                    )
                    if s
                ],
                target=i.target,
                floor=i.floor,
                payment=i.payment,
                band=i.band,
            )
            for n, i in enumerate(c.indicators)
        ],
        financing={
            "model": model.value if model else "",
            "minimum_savings_rate": f.minimum_savings_rate,
            "sharing_rate": f.sharing_rate,
            "sharing_mode": SHARING.get(f.sharing_mode, ""),
            "quality_gate_indicators": list(f.quality_gate_indicators),
            "payout_cap": f.payout_cap,
            "capitation_per_person_year": f.capitation_per_person_year,
            "tariff": f.tariff,
            "notes": f.notes,
        },
        principles={k: getattr(c.principles, k) for k in service.PRINCIPLES},
    )


class OutcomesServicer(rpc_grpc.OutcomesServiceServicer):
    def __init__(self, deps: service.Deps) -> None:
        self.deps = deps

    # enrolments
    def CreateEnrolment(
        self, request: rpc.CreateEnrolmentRequest, context: grpc.ServicerContext
    ) -> pb.Enrolment:
        data = _enrolment_input(request.parent, request.enrolment)
        return enrolment_pb(service.create_enrolment(self.deps, current_principal(), data))

    def BatchCreateEnrolments(
        self, request: rpc.BatchCreateEnrolmentsRequest, context: grpc.ServicerContext
    ) -> rpc.BatchCreateEnrolmentsResponse:
        items = [
            _enrolment_input(r.parent, r.enrolment, f"requests[{n}].enrolment")
            for n, r in enumerate(request.requests)
        ]
        results = service.batch_create_enrolments(self.deps, current_principal(), items)
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
        pager = Pager(request, "enrolments", patient_id)
        page = service.list_enrolments(
            self.deps, current_principal(), patient_id, pager.position, pager.size
        )
        return rpc.ListEnrolmentsResponse(
            enrolments=[enrolment_pb(e) for e in page.items],
            next_page_token=pager.token_for(page.next_position),
        )

    # measurements
    def IngestMeasurements(
        self,
        request_iterator: Iterator[rpc.IngestMeasurementsRequest],
        context: grpc.ServicerContext,
    ) -> rpc.IngestMeasurementsResponse:
        job = service.Ingest(self.deps, current_principal())
        for message in request_iterator:
            job.feed_values(_row_values(message.rows))
        result = job.finish()
        return rpc.IngestMeasurementsResponse(
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=result.rejected,
            results=[
                rpc.RowResult(
                    row=r.row, outcome=OUTCOMES_OUT[r.outcome], reason=r.reason, field=r.field
                )
                for r in result.results
            ],
        )

    def ListMeasurements(
        self, request: rpc.ListMeasurementsRequest, context: grpc.ServicerContext
    ) -> rpc.ListMeasurementsResponse:
        patient_id = names.parse_one(request.parent, "patients", field="parent")
        pager = Pager(request, "measurements", patient_id)
        page = service.list_measurements(
            self.deps, current_principal(), patient_id, pager.position, pager.size
        )
        return rpc.ListMeasurementsResponse(
            measurements=[measurement_pb(m) for m in page.items],
            next_page_token=pager.token_for(page.next_position),
        )

    def ListMeasurementCodes(
        self, request: rpc.ListMeasurementCodesRequest, context: grpc.ServicerContext
    ) -> rpc.ListMeasurementCodesResponse:
        current_principal()
        return rpc.ListMeasurementCodesResponse(
            codes=[
                pb.MeasurementCode(
                    code=c.code,
                    display=c.display,
                    unit=c.unit,
                    min_value=c.min_value,
                    max_value=c.max_value,
                    nhg_code=c.nhg,
                    loinc_code=c.loinc,
                )
                for c in code_table().values()
            ]
        )

    # indicators
    def GetIndicatorDefinition(
        self, request: rpc.GetIndicatorDefinitionRequest, context: grpc.ServicerContext
    ) -> pb.IndicatorDefinition:
        code, version = names.parse(request.name, "indicators", "versions")
        if not version.isdigit():
            raise InvalidArgument.single("name", "the version is a number", "INVALID_RESOURCE_NAME")
        return definition_pb(
            service.get_definition(self.deps, current_principal(), code, int(version))
        )

    def ListIndicatorDefinitions(
        self, request: rpc.ListIndicatorDefinitionsRequest, context: grpc.ServicerContext
    ) -> rpc.ListIndicatorDefinitionsResponse:
        pager = Pager(request, "definitions")
        page = service.list_definitions(self.deps, current_principal(), pager.position, pager.size)
        return rpc.ListIndicatorDefinitionsResponse(
            indicator_definitions=[definition_pb(d) for d in page.items],
            next_page_token=pager.token_for(page.next_position),
        )

    # contracts
    def CreateContract(
        self, request: rpc.CreateContractRequest, context: grpc.ServicerContext
    ) -> pb.Contract:
        contract = service.create_contract(
            self.deps,
            current_principal(),
            request.contract_id,
            _contract_input(request.contract),
            request.request_id,
        )
        return contract_pb(contract)

    def GetContract(
        self, request: rpc.GetContractRequest, context: grpc.ServicerContext
    ) -> pb.Contract:
        contract_id = names.parse_one(request.name, "contracts")
        return contract_pb(service.get_contract(self.deps, current_principal(), contract_id))

    def ListContracts(
        self, request: rpc.ListContractsRequest, context: grpc.ServicerContext
    ) -> rpc.ListContractsResponse:
        pager = Pager(request, "contracts")
        page = service.list_contracts(self.deps, current_principal(), pager.position, pager.size)
        return rpc.ListContractsResponse(
            contracts=[contract_pb(c) for c in page.items],
            next_page_token=pager.token_for(page.next_position),
        )

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
        report = service.compute_indicators(
            self.deps,
            principal,
            contract_id,
            _time(request, "period_start"),
            _time(request, "period_end"),
            stratifiers,
        )
        return report_pb(report, service.visible_cells(principal, report))

    def GetReport(self, request: rpc.GetReportRequest, context: grpc.ServicerContext) -> pb.Report:
        report_id = names.parse_one(request.name, "reports")
        report, cells = service.get_report(self.deps, current_principal(), report_id)
        return report_pb(report, cells)

    def ListReports(
        self, request: rpc.ListReportsRequest, context: grpc.ServicerContext
    ) -> rpc.ListReportsResponse:
        contract_id = (
            names.parse_one(request.contract, "contracts", field="contract")
            if request.contract
            else ""
        )
        pager = Pager(request, "reports", contract_id)
        page = service.list_reports(
            self.deps, current_principal(), contract_id, pager.position, pager.size
        )
        return rpc.ListReportsResponse(
            reports=[report_pb(r, None) for r in page.items],
            next_page_token=pager.token_for(page.next_position),
        )

    def StreamReport(
        self, request: rpc.StreamReportRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ReportCell]:
        report_id = names.parse_one(request.name, "reports")
        for cell in service.stream_report(self.deps, current_principal(), report_id):
            yield cell_pb(cell)

    def VerifyReport(
        self, request: rpc.VerifyReportRequest, context: grpc.ServicerContext
    ) -> rpc.VerifyReportResponse:
        report_id = names.parse_one(request.name, "reports")
        v = service.verify_report(self.deps, current_principal(), report_id)
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
        found = service.source_discrepancies(
            self.deps,
            current_principal(),
            contract_id,
            _time(request, "period_start"),
            _time(request, "period_end"),
        )
        return rpc.GetSourceDiscrepanciesResponse(
            discrepancies=[
                rpc.SourceDiscrepancy(
                    indicator=d.indicator,
                    source_a=SOURCES_OUT[d.source_a],
                    source_b=SOURCES_OUT[d.source_b],
                    patients_compared=d.compared or 0,
                    agree=d.agree or 0,
                    a_higher=d.a_higher or 0,
                    b_higher=d.b_higher or 0,
                    suppression=SUPPRESSION_OUT[d.suppression],
                )
                for d in found
            ]
        )

    # financing
    def RecordCosts(
        self, request: rpc.RecordCostsRequest, context: grpc.ServicerContext
    ) -> pb.CostRecord:
        contract_id = names.parse_one(request.parent, "contracts", field="parent")
        c = request.cost_record
        data = service.CostInput(
            period_start=_time(c, "period_start"),
            period_end=_time(c, "period_end"),
            benchmark_cost=c.benchmark_cost,
            actual_cost=c.actual_cost,
            insured_person_years=c.insured_person_years,
        )
        return cost_pb(service.record_costs(self.deps, current_principal(), contract_id, data))

    def EvaluateContract(
        self, request: rpc.EvaluateContractRequest, context: grpc.ServicerContext
    ) -> rpc.EvaluateContractResponse:
        contract_id = names.parse_one(request.contract, "contracts", field="contract")
        report_id = (
            names.parse_one(request.report, "reports", field="report") if request.report else ""
        )
        result = service.evaluate_contract(
            self.deps,
            current_principal(),
            contract_id,
            _time(request, "period_start"),
            _time(request, "period_end"),
            report_id,
        )
        return rpc.EvaluateContractResponse(
            model=MODELS_OUT[result.model],
            total_payment=financing.fmt(result.evaluation.total),
            lines=[line_pb(line) for line in result.evaluation.lines],
            report=f"reports/{result.report_id}" if result.report_id else "",
            cost_record=f"contracts/{contract_id}/costs/{result.cost_record_id}"
            if result.cost_record_id
            else "",
            quality_gate_met=result.evaluation.quality_gate_met,
        )

    def CalculateSroi(
        self, request: rpc.CalculateSroiRequest, context: grpc.ServicerContext
    ) -> rpc.CalculateSroiResponse:
        v = Violations()
        if not request.investments:
            v.add("investments", "at least one", "INVESTMENTS_REQUIRED")
        investments = [
            sroi.Investment(i.stakeholder, _decimal(i.amount, f"investments[{n}].amount", v))
            for n, i in enumerate(request.investments)
        ]
        outcomes = []
        for n, o in enumerate(request.outcomes):
            p = f"outcomes[{n}]"
            fractions = {
                k: _decimal(getattr(o, k), f"{p}.{k}", v)
                for k in ("deadweight", "displacement", "attribution", "drop_off")
            }
            for k, x in fractions.items():
                if not 0 <= x <= 1:
                    v.add(f"{p}.{k}", "a fraction between 0 and 1", "INVALID_FRACTION")
            if not 1 <= o.duration_years <= 50:
                v.add(f"{p}.duration_years", "between 1 and 50", "INVALID_DURATION")
            if not o.stakeholder:
                v.add(f"{p}.stakeholder", "is required", "STAKEHOLDER_REQUIRED")
            outcomes.append(
                sroi.Outcome(
                    stakeholder=o.stakeholder,
                    description=o.description,
                    quantity=_decimal(o.quantity, f"{p}.quantity", v),
                    proxy=_decimal(o.financial_proxy, f"{p}.financial_proxy", v),
                    duration_years=o.duration_years,
                    **fractions,
                )
            )
        rate = _decimal(request.discount_rate, "discount_rate", v)
        if not 0 <= rate < 1:
            v.add("discount_rate", "a fraction between 0 and 1", "INVALID_FRACTION")
        if any(i.amount <= 0 for i in investments):
            v.add("investments", "amounts must be positive", "INVALID_DECIMAL")
        v.raise_if_any()
        result = service.calculate_sroi(current_principal(), investments, outcomes, rate)
        return rpc.CalculateSroiResponse(
            stakeholders=[
                rpc.StakeholderValue(
                    stakeholder=s,
                    investment=str(result.investment_by_stakeholder[s]),
                    present_value=str(result.value_by_stakeholder[s]),
                )
                for s in result.value_by_stakeholder
            ],
            total_investment=str(result.total_investment),
            total_present_value=str(result.total_value),
            ratio=str(result.ratio),
            net_social_value=str(result.net_social_value),
            ratio_low=str(result.ratio_low),
            ratio_high=str(result.ratio_high),
            lines=[line_pb(line) for line in result.lines],
        )

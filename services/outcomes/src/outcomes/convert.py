"""Proto <-> use-case values for the outcomes servicer: enum tables, resources to proto,
requests to inputs. A Timestamp from a request is read with servicekit's checked conversion,
so an out-of-range time is INVALID_ARGUMENT naming its field, never INTERNAL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf.wrappers_pb2 import DoubleValue, Int64Value
from google.type.money_pb2 import Money  # type: ignore[import-untyped]

from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from outcomes import financing, models
from outcomes import sroi as formulas
from outcomes.codes import Code
from outcomes.contract_terms import PRINCIPLES, ContractIndicatorInput, ContractInput
from outcomes.use_cases import discrepancies, enrolments, measurements, sroi
from servicekit import enums, names
from servicekit.errors import Violations
from servicekit.timestamps import (
    MAX_NANOS,
    MAX_SECONDS,
    MIN_SECONDS,
    field_from_request,
    to_proto,
)

# Proto enum <-> model values by naming convention (servicekit.enums.EnumMap).
PROGRAMMES = enums.EnumMap(pb.Programme, models.Programme)
SEXES = enums.EnumMap(
    pb.Sex, models.Sex, aliases={"F": "SEX_FEMALE", "M": "SEX_MALE", "X": "SEX_OTHER"}
)
SOURCES = enums.EnumMap(pb.SourceKind, models.SourceKind)
MODELS = enums.EnumMap(pb.FinancingModel, models.FinancingModel)
SHARING = enums.EnumMap(pb.SharingMode, ["first-euro", "above-threshold"])
STRATIFIERS = enums.EnumMap(pb.Stratifier, models.Stratifier)
SUPPRESSIONS = enums.EnumMap(pb.Suppression, ["none", "primary", "complementary"])
OUTCOMES = enums.EnumMap(rpc.RowOutcome, ["accepted", "duplicate", "rejected", "corrected"])
PROGRAMME_VALUES = frozenset(p.value for p in models.Programme)


CURRENCY = "EUR"
NANOS = Decimal(10**9)


def money_pb(amount: Decimal | str) -> Money | None:
    """A euro amount (a Decimal, or a stored decimal string; empty: none) as money: whole
    units and nanos, both of the amount's sign."""
    if isinstance(amount, str):
        if not amount:
            return None
        amount = Decimal(amount)
    units = int(amount)  # toward zero
    nanos = int((amount - units) * NANOS)
    return Money(currency_code=CURRENCY, units=units, nanos=nanos)


def money_text(m: Money, field: str, v: Violations) -> str:
    """A request's money as the decimal string the service stores, or "" with a violation."""
    if m.currency_code != CURRENCY:
        v.add(field, f"currency_code must be {CURRENCY}", "UNSUPPORTED_CURRENCY")
        return ""
    if not -999_999_999 <= m.nanos <= 999_999_999 or (m.units * m.nanos < 0):
        v.add(
            field,
            "nanos between -999,999,999 and 999,999,999, of the sign of units",
            "INVALID_MONEY",
        )
        return ""
    return format((Decimal(m.units) + Decimal(m.nanos) / NANOS).normalize(), "f")


def amount_of(message: Any, field: str, path: str, v: Violations) -> str:
    """The euro amount a request gives as ``field`` (a decimal string) or ``field_money``
    (money): the money's when it is set, refused when both are given and differ."""
    text: str = getattr(message, field)
    if not message.HasField(f"{field}_money"):
        return text
    value = money_text(getattr(message, f"{field}_money"), f"{path}_money", v)
    if value and text:
        try:
            same = Decimal(text) == Decimal(value)
        except InvalidOperation:
            same = False
        if not same:
            v.add(f"{path}_money", f"differs from {path.rsplit('.', 1)[-1]}", "AMOUNT_MISMATCH")
    return value


def count_pb(value: int | None) -> Int64Value | None:
    """A count that may be withheld (None): unset rather than 0."""
    return None if value is None else Int64Value(value=value)


# ---------------------------------------------------------------- to proto


def enrolment_pb(e: models.Enrolment) -> pb.Enrolment:
    return pb.Enrolment(
        name=f"patients/{e.patient_id}/enrolments/{e.programme.lower()}",
        programme=pb.Programme.ValueType(PROGRAMMES.to_proto(e.programme)),
        practice=f"organisations/{e.practice_id}",
        practice_agb=e.practice_agb,
        start_time=to_proto(e.start_time),
        main_practitioner=e.main_practitioner,
        birth_year=e.birth_year,
        sex=pb.Sex.ValueType(SEXES.to_proto(e.sex)),
        create_time=to_proto(e.create_time),
        update_time=to_proto(e.create_time),
    )


def revision_pb(r: models.MeasurementRevision) -> pb.MeasurementRevision:
    return pb.MeasurementRevision(
        value=r.value,
        measure_time=to_proto(r.measured_at),
        receive_time=to_proto(r.ingested_at),
        replace_time=to_proto(r.superseded_at),
    )


def measurement_pb(view: measurements.MeasurementView) -> pb.Measurement:
    m = view.measurement
    return pb.Measurement(
        name=f"patients/{m.patient_id}/measurements/{m.id}",
        code=m.code,
        value=m.value,
        unit=m.unit,
        measure_time=to_proto(m.measured_at),
        source=pb.MeasurementSource(
            kind=pb.SourceKind.ValueType(SOURCES.to_proto(m.source_kind)),
            organisation=f"organisations/{m.source_org}",
        ),
        source_record_id=m.source_record_id,
        create_time=to_proto(m.ingested_at),
        record_holder=f"organisations/{m.holder_id}",
        revisions=[revision_pb(r) for r in view.revisions],
    )


def definition_pb(d: models.IndicatorDefinitionRecord) -> pb.IndicatorDefinition:
    return pb.IndicatorDefinition(
        name=f"indicators/{d.code}/versions/{d.version}",
        code=d.code,
        version=d.version,
        title=d.title,
        # PROM indicators have a condition that is no programme: UNSPECIFIED.
        condition=pb.Programme.ValueType(
            PROGRAMMES.to_proto(d.condition if d.condition in PROGRAMME_VALUES else "")
        ),
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
                agreed_sources=[pb.SourceKind.ValueType(SOURCES.to_proto(s)) for s in t["sources"]],
                target=t["target"],
                floor=t["floor"],
                payment=t["payment"],
                band=t.get("band", ""),
                payment_money=money_pb(t["payment"]),
            )
            for t in terms["indicators"]
        ],
        financing=pb.FinancingTerms(
            model=pb.FinancingModel.ValueType(MODELS.to_proto(f["model"])),
            minimum_savings_rate=f.get("minimum_savings_rate", ""),
            sharing_rate=f.get("sharing_rate", ""),
            sharing_mode=pb.SharingMode.ValueType(SHARING.to_proto(f.get("sharing_mode", ""))),
            quality_gate_indicators=f.get("quality_gate_indicators", []),
            payout_cap=f.get("payout_cap", ""),
            capitation_per_person_year=f.get("capitation_per_person_year", ""),
            tariff=f.get("tariff", ""),
            notes=f.get("notes", ""),
            payout_cap_money=money_pb(f.get("payout_cap", "")),
            capitation_per_person_year_money=money_pb(f.get("capitation_per_person_year", "")),
            tariff_money=money_pb(f.get("tariff", "")),
        ),
        principles=pb.ContractPrinciples(**terms["principles"]),
        create_time=to_proto(c.create_time),
        update_time=to_proto(c.update_time),
        etag=c.etag,
    )


def cell_pb(c: Mapping[str, Any]) -> pb.ReportCell:
    """A cell; a suppressed one carries no numbers (``values`` unset, the deprecated number
    fields 0)."""
    cell = pb.ReportCell(
        indicator=c["indicator"],
        version=c["version"],
        practice=f"organisations/{c['practice']}" if c["practice"] else "",
        age_band=c["age_band"],
        sex=pb.Sex.ValueType(SEXES.to_proto(c["sex"])),
        band=c["band"],
        numerator=c["numerator"] or 0,
        denominator=c["denominator"] or 0,
        exclusions=c["exclusions"] or 0,
        score=c["score"] or 0.0,
        ci_low=c["ci_low"] or 0.0,
        ci_high=c["ci_high"] or 0.0,
        suppression=pb.Suppression.ValueType(SUPPRESSIONS.to_proto(c["suppression"])),
        patient_years=c["patient_years"] or 0.0,
    )
    if c["suppression"] == "none":
        scored = c["denominator"] - c["exclusions"] > 0
        cell.values.CopyFrom(
            pb.CellValues(
                numerator=c["numerator"],
                denominator=c["denominator"],
                exclusions=c["exclusions"],
                score=DoubleValue(value=c["score"]) if scored else None,
                ci_low=DoubleValue(value=c["ci_low"]) if scored else None,
                ci_high=DoubleValue(value=c["ci_high"]) if scored else None,
                patient_years=DoubleValue(value=c["patient_years"])
                if c["patient_years"] is not None
                else None,
            )
        )
    return cell


def report_pb(r: models.Report, cells: list[dict[str, Any]] | None) -> pb.Report:
    inputs = r.inputs
    return pb.Report(
        name=f"reports/{r.id}",
        care_group=f"organisations/{r.care_group_id}",
        contract=f"contracts/{r.contract_id}" if r.contract_id else "",
        period_start=to_proto(r.period_start),
        period_end=to_proto(r.period_end),
        stratifiers=[
            pb.Stratifier.ValueType(STRATIFIERS.to_proto(s)) for s in inputs["stratifiers"]
        ],
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
        benchmark_cost_money=money_pb(c.benchmark_cost),
        actual_cost_money=money_pb(c.actual_cost),
    )


def line_pb(line: financing.Line) -> rpc.AmountLine:
    return rpc.AmountLine(
        label=line.label,
        amount=financing.fmt(line.amount),
        formula=line.formula,
        inputs=dict(line.inputs),
        money=money_pb(line.amount) if line.unit == financing.EURO else None,
    )


# ---------------------------------------------------------------- from proto


def enrolment_input(
    parent: str, e: pb.Enrolment, prefix: str = "enrolment"
) -> enrolments.EnrolmentInput:
    patient_id = names.parse_one(parent, "patients", field="parent")
    return enrolments.EnrolmentInput(
        patient_id=patient_id,
        programme=enums.from_proto(PROGRAMMES, e.programme, f"{prefix}.programme"),
        practice_id=names.optional_id(e.practice, "organisations", f"{prefix}.practice"),
        practice_agb=e.practice_agb,
        start_time=field_from_request(e, "start_time", f"{prefix}.start_time"),
        main_practitioner=e.main_practitioner,
        birth_year=e.birth_year,
        sex=enums.from_proto(SEXES, e.sex, f"{prefix}.sex"),
    )


SOURCE_VALUES = {k: v.value for k, v in SOURCES.items()}


def row_values(rows: Iterable[rpc.MeasurementRow]) -> list[measurements.RowValues]:
    """The rows as the ingest checks them, read field by field without building datetimes.
    A measure time that is no valid Timestamp becomes ``measurements.INVALID_TIME``, so that its
    row alone is rejected (INVALID_MEASURE_TIME) and the others are kept."""
    kinds = SOURCE_VALUES
    invalid = measurements.INVALID_TIME
    values: list[measurements.RowValues] = []
    append = values.append
    for r in rows:
        ts = r.measure_time
        seconds, nanos = ts.seconds, ts.nanos
        micros: int | None = None
        if seconds or nanos or r.HasField("measure_time"):
            if MIN_SECONDS <= seconds <= MAX_SECONDS and 0 <= nanos <= MAX_NANOS:
                micros = seconds * 1_000_000 + nanos // 1000
            else:
                micros = invalid
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


def contract_input(c: pb.Contract) -> ContractInput:
    f = c.financing
    model = enums.from_proto(MODELS, f.model, "contract.financing.model")
    v = Violations()
    data = ContractInput(
        display_name=c.display_name,
        insurer_id=names.optional_id(c.insurer, "organisations", "contract.insurer"),
        period_start=field_from_request(c, "period_start", "contract.period_start"),
        period_end=field_from_request(c, "period_end", "contract.period_end"),
        indicators=[
            ContractIndicatorInput(
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
                payment=amount_of(i, "payment", f"contract.indicators[{n}].payment", v),
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
            "payout_cap": amount_of(f, "payout_cap", "contract.financing.payout_cap", v),
            "capitation_per_person_year": amount_of(
                f,
                "capitation_per_person_year",
                "contract.financing.capitation_per_person_year",
                v,
            ),
            "tariff": amount_of(f, "tariff", "contract.financing.tariff", v),
            "notes": f.notes,
        },
        principles={k: getattr(c.principles, k) for k in PRINCIPLES},
    )
    v.raise_if_any()
    return data


def code_pb(c: Code) -> pb.MeasurementCode:
    return pb.MeasurementCode(
        code=c.code,
        display=c.display,
        unit=c.unit,
        min_value=c.min_value,
        max_value=c.max_value,
        nhg_code=c.nhg,
        loinc_code=c.loinc,
    )


def ingest_result_pb(result: measurements.IngestResult) -> rpc.IngestMeasurementsResponse:
    return rpc.IngestMeasurementsResponse(
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=result.rejected,
        corrected=result.corrected,
        results=[
            rpc.RowResult(
                row=r.row,
                outcome=rpc.RowOutcome.ValueType(OUTCOMES.to_proto(r.outcome)),
                reason=r.reason,
                field=r.field,
            )
            for r in result.results
        ],
    )


def discrepancy_pb(d: discrepancies.Discrepancy) -> rpc.SourceDiscrepancy:
    """A discrepancy line; a withheld count is unset (and 0 in the deprecated fields)."""
    return rpc.SourceDiscrepancy(
        indicator=d.indicator,
        source_a=pb.SourceKind.ValueType(SOURCES.to_proto(d.source_a)),
        source_b=pb.SourceKind.ValueType(SOURCES.to_proto(d.source_b)),
        patients_compared=d.compared or 0,
        agree=d.agree or 0,
        a_higher=d.a_higher or 0,
        b_higher=d.b_higher or 0,
        compared_patients=count_pb(d.compared),
        agreeing_patients=count_pb(d.agree),
        a_higher_patients=count_pb(d.a_higher),
        b_higher_patients=count_pb(d.b_higher),
        suppression=pb.Suppression.ValueType(SUPPRESSIONS.to_proto(d.suppression)),
    )


def sroi_input(
    request: rpc.CalculateSroiRequest,
) -> tuple[list[sroi.InvestmentInput], list[sroi.OutcomeInput]]:
    """The business case's investments and outcomes (amounts as strings or money)."""
    v = Violations()
    investments = [
        sroi.InvestmentInput(i.stakeholder, amount_of(i, "amount", f"investments[{n}].amount", v))
        for n, i in enumerate(request.investments)
    ]
    outcomes = [
        sroi.OutcomeInput(
            stakeholder=o.stakeholder,
            description=o.description,
            quantity=o.quantity,
            financial_proxy=amount_of(o, "financial_proxy", f"outcomes[{n}].financial_proxy", v),
            duration_years=o.duration_years,
            deadweight=o.deadweight,
            displacement=o.displacement,
            attribution=o.attribution,
            drop_off=o.drop_off,
        )
        for n, o in enumerate(request.outcomes)
    ]
    v.raise_if_any()
    return investments, outcomes


def sroi_pb(result: formulas.SroiResult) -> rpc.CalculateSroiResponse:
    return rpc.CalculateSroiResponse(
        stakeholders=[
            rpc.StakeholderValue(
                stakeholder=s,
                investment=str(result.investment_by_stakeholder[s]),
                present_value=str(result.value_by_stakeholder[s]),
                investment_money=money_pb(result.investment_by_stakeholder[s]),
                present_value_money=money_pb(result.value_by_stakeholder[s]),
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
        total_investment_money=money_pb(result.total_investment),
        total_present_value_money=money_pb(result.total_value),
        net_social_value_money=money_pb(result.net_social_value),
    )

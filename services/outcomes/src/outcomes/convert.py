"""Proto <-> use-case values for the outcomes servicer: enum tables, resources to proto,
requests to inputs. A Timestamp from a request is read with servicekit's checked conversion,
so an out-of-range time is INVALID_ARGUMENT naming its field, never INTERNAL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from outcomes import financing, models
from outcomes.base import amount_in_range
from outcomes.contract_terms import PRINCIPLES, ContractIndicatorInput, ContractInput
from outcomes.use_cases import enrolments, measurements
from servicekit import enums, names
from servicekit.errors import Violations
from servicekit.timestamps import MAX_NANOS, MAX_SECONDS, MIN_SECONDS, from_request, to_proto

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
    "corrected": rpc.ROW_OUTCOME_CORRECTED,
}


def time_of(message: Any, field: str, path: str) -> dt.datetime | None:
    """The Timestamp ``field`` of ``message`` (``path`` in the request), None when unset;
    out of range: INVALID_ARGUMENT ``INVALID_TIMESTAMP`` naming ``path``."""
    return from_request(getattr(message, field), path, message.HasField(field))


def decimal_value(text: str, field: str, v: Violations, default: str = "0") -> Decimal:
    try:
        value = Decimal(text or default)
    except InvalidOperation:
        v.add(field, "a decimal number", "INVALID_DECIMAL")
        return Decimal(0)
    if not amount_in_range(value):
        v.add(field, "0, or between 1e-6 and 1e15 (either sign)", "INVALID_DECIMAL")
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
            kind=SOURCES_OUT[m.source_kind], organisation=f"organisations/{m.source_org}"
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


def enrolment_input(
    parent: str, e: pb.Enrolment, prefix: str = "enrolment"
) -> enrolments.EnrolmentInput:
    patient_id = names.parse_one(parent, "patients", field="parent")
    return enrolments.EnrolmentInput(
        patient_id=patient_id,
        programme=enums.from_proto(PROGRAMMES, e.programme, f"{prefix}.programme"),
        practice_id=names.optional_id(e.practice, "organisations", f"{prefix}.practice"),
        practice_agb=e.practice_agb,
        start_time=time_of(e, "start_time", f"{prefix}.start_time"),
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
    return ContractInput(
        display_name=c.display_name,
        insurer_id=names.optional_id(c.insurer, "organisations", "contract.insurer"),
        period_start=time_of(c, "period_start", "contract.period_start"),
        period_end=time_of(c, "period_end", "contract.period_end"),
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
        principles={k: getattr(c.principles, k) for k in PRINCIPLES},
    )

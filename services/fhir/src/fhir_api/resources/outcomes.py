"""Observation from a measurement and MeasureReport from an insurer's report (shared/fhir.md
sections 6 and 7). A suppressed report cell carries no numbers: its counts are absent and
marked with the data-absent-reason ``masked``, never 0."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from carenet.outcomes.v1 import outcomes_pb2 as pb
from fhir_api.resources.common import (
    Codes,
    Json,
    date,
    drop_empty,
    enum_code,
    inner_id,
    instant,
    last_segment,
    organisation_ref,
    patient_ref,
    segment,
)

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
GENDER = "http://hl7.org/fhir/administrative-gender"
LAB_CODES = {"HBA1C", "LDL", "NON_HDL", "EGFR", "ACR"}
VITAL_CODES = {"SBP", "DBP", "WEIGHT", "BMI", "HEIGHT", "WAIST"}
SEX_CODES = {pb.SEX_FEMALE: "female", pb.SEX_MALE: "male", pb.SEX_OTHER: "other"}
# A suppressed cell says why, on the stratum, in carenet's own extension and code system.
SUPPRESSION_CODES = {
    pb.SUPPRESSION_PRIMARY: ("primary", "Kleine aantallen (1 t/m 9): niet getoond"),
    pb.SUPPRESSION_COMPLEMENTARY: (
        "complementary",
        "Niet getoond: anders is een kleine cel terug te rekenen",
    ),
}


def _category(code: str) -> str:
    if code in LAB_CODES:
        return "laboratory"
    if code in VITAL_CODES:
        return "vital-signs"
    if code == "SMOKING_STATUS":
        return "social-history"
    return "survey"


def observation(
    measurement: pb.Measurement, code_table: Mapping[str, pb.MeasurementCode], codes: Codes
) -> Json:
    patient_id = segment(measurement.name, "patients")
    known = code_table.get(measurement.code)
    coding = [codes.coding("measurement-code", measurement.code, known.display if known else "")]
    if known is not None and known.loinc_code:
        coding.insert(0, {"system": LOINC, "code": known.loinc_code, "display": known.display})
    source_kind = enum_code(pb.SourceKind.Name(measurement.source.kind), "SOURCE_KIND_")
    performer = (
        patient_ref(patient_id)
        if measurement.source.kind == pb.SOURCE_KIND_PATIENT
        else organisation_ref(measurement.source.organisation)
    )
    resource: Json = {
        "resourceType": "Observation",
        "id": inner_id(patient_id, last_segment(measurement.name)),
        "meta": {"source": f"{codes.base}/source/{source_kind}"},
        "identifier": [
            {
                "system": codes.naming(
                    f"source-record/{last_segment(measurement.source.organisation)}"
                ),
                "value": measurement.source_record_id,
            }
        ],
        # a corrected value is amended: its earlier values are kept in outcomes' history
        "status": "amended" if len(measurement.revisions) else "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": _category(measurement.code)}]}
        ],
        "code": {"coding": coding, "text": known.display if known else measurement.code},
        "subject": patient_ref(patient_id),
        "effectiveDateTime": instant(measurement.measure_time),
        "issued": instant(measurement.create_time),
        "performer": [performer],
        "valueQuantity": {
            "value": measurement.value,
            "unit": measurement.unit,
            "system": UCUM,
            "code": measurement.unit,
        },
    }
    return drop_empty(resource)


def _population(code: str, count: int | None) -> Json:
    population: Json = {"code": {"coding": [{"system": MEASURE_POPULATION, "code": code}]}}
    if count is None:
        population["_count"] = {"extension": [{"url": DATA_ABSENT, "valueCode": "masked"}]}
    else:
        population["count"] = count
    return population


def _suppressed(cell: pb.ReportCell) -> bool:
    return cell.suppression != pb.SUPPRESSION_NONE or not cell.HasField("values")


def _numbers(cell: pb.ReportCell) -> Json:
    """The populations and score of a cell; a suppressed cell's counts are masked."""
    shown = not _suppressed(cell)
    values = cell.values
    populations = [
        _population("denominator", values.denominator if shown else None),
        _population("denominator-exclusion", values.exclusions if shown else None),
        _population("numerator", values.numerator if shown else None),
    ]
    out: Json = {"population": populations}
    if shown and values.HasField("score"):
        if values.HasField("patient_years"):
            # a rate: events per 100 patient-years (no UCUM code for the denominator)
            out["measureScore"] = {
                "value": round(values.score.value, 4),
                "unit": "per 100 patiëntjaren",
            }
        else:
            out["measureScore"] = {
                "value": round(values.score.value, 4),
                "unit": "%",
                "system": UCUM,
                "code": "%",
            }
    return out


def _why(cell: pb.ReportCell, codes: Codes) -> list[Json]:
    """The extension on a suppressed stratum saying why its numbers are withheld."""
    if not _suppressed(cell):
        return []
    code, text = SUPPRESSION_CODES.get(cell.suppression, ("withheld", "Niet getoond"))
    return [
        {
            "url": f"{codes.base}/StructureDefinition/suppression",
            "valueCodeableConcept": {"coding": [codes.coding("suppression", code)], "text": text},
        }
    ]


def _dimensions(cell: pb.ReportCell, codes: Codes) -> list[tuple[str, Json]]:
    """The stratum dimensions a cell names, as (dimension, value) pairs, in the order
    practice, age band, sex, band."""
    dims: list[tuple[str, Json]] = []
    if cell.practice:
        dims.append(
            ("practice", {"coding": [codes.coding("practice", last_segment(cell.practice))]})
        )
    if cell.age_band:
        dims.append(
            (
                "age-band",
                {"coding": [codes.coding("age-band", cell.age_band)], "text": cell.age_band},
            )
        )
    if cell.sex:
        code = SEX_CODES.get(cell.sex, "unknown")
        dims.append(("sex", {"coding": [{"system": GENDER, "code": code}]}))
    if cell.band:
        dims.append(("band", {"coding": [codes.coding("band", cell.band)], "text": cell.band}))
    return dims


def _group(indicator: str, cells: Sequence[pb.ReportCell], codes: Codes) -> Json:
    """One group per indicator: the total cell's numbers, and one stratifier per
    combination of dimensions (practice; age band; sex; practice x age band; ...), its
    strata the cells of that combination."""
    total = next((c for c in cells if not _dimensions(c, codes)), None)
    strata: dict[tuple[str, ...], list[Json]] = defaultdict(list)
    for cell in cells:
        dims = _dimensions(cell, codes)
        if not dims:
            continue
        stratum: Json = (
            {"value": dims[0][1]}
            if len(dims) == 1
            else {
                "component": [
                    {"code": codes.concept("stratifier", name), "value": value}
                    for name, value in dims
                ]
            }
        )
        why = _why(cell, codes)
        if why:
            stratum["extension"] = why
        strata[tuple(name for name, _ in dims)].append(stratum | _numbers(cell))
    version = cells[0].version if cells else 0
    group: Json = {
        "code": {
            "coding": [codes.coding("indicator", indicator)],
            "text": f"{indicator} (versie {version})",
        },
        **(_numbers(total) if total is not None else {}),
        "stratifier": [
            {"code": [codes.concept("stratifier", name) for name in key], "stratum": found}
            for key, found in strata.items()
        ],
    }
    if total is not None and _why(total, codes):
        group["extension"] = _why(total, codes)
    return group


def measure_report(report: pb.Report, codes: Codes) -> Json:
    by_indicator: dict[str, list[pb.ReportCell]] = defaultdict(list)
    for cell in report.cells:
        by_indicator[cell.indicator].append(cell)
    contract = last_segment(report.contract)
    resource: Json = {
        "resourceType": "MeasureReport",
        "id": last_segment(report.name),
        "meta": {"lastUpdated": instant(report.create_time)},
        "identifier": [{"system": codes.naming("report"), "value": report.name}],
        "status": "complete",
        "type": "summary",
        # the contract's indicator set; a care group's own report (no contract) has its own
        "measure": f"{codes.base}/Measure/contract-{contract}"
        if contract
        else f"{codes.base}/Measure/care-group",
        "date": instant(report.create_time),
        "reporter": organisation_ref(report.care_group),
        "period": {"start": date(report.period_start), "end": date(report.period_end)},
        "group": [_group(ind, cells, codes) for ind, cells in sorted(by_indicator.items())],
    }
    return drop_empty(resource)

"""Observation and MeasureReport (strata by practice, age band and sex; suppressed cells)
over every enum value (no platform)."""

from __future__ import annotations

import itertools

import pytest
from fhir_api.resources import outcomes
from fhir_api.resources.common import Codes
from google.protobuf.timestamp_pb2 import Timestamp
from google.protobuf.wrappers_pb2 import DoubleValue

from carenet.outcomes.v1 import outcomes_pb2 as pb

from ..valuesets import (
    ADMINISTRATIVE_GENDER,
    MEASURE_POPULATION,
    OBSERVATION_CATEGORY,
    OBSERVATION_STATUS,
    valid,
)

CODES = Codes("https://carenet.example/fhir")
STRATIFIER = "https://carenet.example/fhir/CodeSystem/stratifier"
MASKED = {
    "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "masked"}
    ]
}
TABLE = {
    "HBA1C": pb.MeasurementCode(code="HBA1C", loinc_code="59261-8", display="HbA1c"),
    "SBP": pb.MeasurementCode(code="SBP", loinc_code="8480-6", display="Systolic"),
}


@pytest.mark.parametrize("kind", [v for v in pb.SourceKind.values() if v])
def test_every_measurement_source(kind: int) -> None:
    for code in ("HBA1C", "SBP", "SMOKING_STATUS", "PAM13"):
        measurement = pb.Measurement(
            name="patients/p-0001/measurements/m-1",
            code=code,
            value=52,
            unit="mmol/mol",
            measure_time=Timestamp(seconds=1_700_000_000),
            source=pb.MeasurementSource(kind=kind, organisation="organisations/lab-1"),  # type: ignore[arg-type]
            source_record_id="rec-1",
        )
        resource = valid(outcomes.observation(measurement, TABLE, CODES))
        assert resource["status"] in OBSERVATION_STATUS
        category = resource["category"][0]["coding"][0]["code"]
        assert category in OBSERVATION_CATEGORY
        assert resource["subject"] == {"reference": "Patient/p-0001"}
        performer = resource["performer"][0]["reference"]
        assert performer == (
            "Patient/p-0001" if kind == pb.SOURCE_KIND_PATIENT else "Organization/lab-1"
        )
        if code in TABLE:
            assert resource["code"]["coding"][0] == {
                "system": "http://loinc.org",
                "code": TABLE[code].loinc_code,
                "display": TABLE[code].display,
            }
        assert resource["valueQuantity"]["code"] == "mmol/mol"


def _cell(practice: str, age: str, sex: int, suppression: int, **values: object) -> pb.ReportCell:
    cell = pb.ReportCell(
        indicator="DM2_HBA1C_MEASURED",
        version=1,
        practice=f"organisations/{practice}" if practice else "",
        age_band=age,
        sex=sex,  # type: ignore[arg-type]
        suppression=suppression,  # type: ignore[arg-type]
    )
    if suppression == pb.SUPPRESSION_NONE:
        cell.values.CopyFrom(
            pb.CellValues(
                numerator=30,
                denominator=50,
                exclusions=2,
                score=DoubleValue(value=62.5),
                **values,  # type: ignore[arg-type]
            )
        )
    return cell


def test_strata_by_practice_age_band_and_sex_with_every_margin() -> None:
    """The cube with every margin: each combination of dimensions is one stratifier; each
    sex and suppression value appears."""
    cells = []
    sexes = [s for s in pb.Sex.values() if s]
    suppressions = itertools.cycle([s for s in pb.Suppression.values() if s])
    for practice, age, sex in itertools.product(
        ("", "gp-de-linde"), ("", "18-39", "80+"), [0, *sexes]
    ):
        suppression = pb.SUPPRESSION_NONE if not (practice or age or sex) else next(suppressions)
        cells.append(_cell(practice, age, sex, suppression))
    report = pb.Report(
        name="reports/r-1",
        care_group="organisations/cg-zuidoost",
        contract="contracts/k-1",
        period_start=Timestamp(seconds=1_704_067_200),
        period_end=Timestamp(seconds=1_711_843_200),
        cells=cells,
        create_time=Timestamp(seconds=1_712_000_000),
    )
    resource = valid(outcomes.measure_report(report, CODES))
    assert resource["type"] == "summary" and resource["status"] == "complete"
    assert resource["period"] == {"start": "2024-01-01", "end": "2024-03-31"}
    [group] = resource["group"]
    # the total: shown
    assert [p["count"] for p in group["population"]] == [50, 2, 30]
    assert group["measureScore"]["value"] == 62.5
    stratifiers = {
        tuple(c["coding"][0]["code"] for c in s["code"]): s["stratum"] for s in group["stratifier"]
    }
    assert set(stratifiers) == {
        ("practice",), ("age-band",), ("sex",), ("practice", "age-band"), ("practice", "sex"),
        ("age-band", "sex"), ("practice", "age-band", "sex"),
    }  # fmt: skip
    for key, strata in stratifiers.items():
        for stratum in strata:
            if len(key) == 1:
                values = [stratum["value"]]
            else:
                codes_ = [c["code"]["coding"][0] for c in stratum["component"]]
                assert [c["code"] for c in codes_] == list(key)
                assert all(c["system"] == STRATIFIER for c in codes_)
                values = [c["value"] for c in stratum["component"]]
            for name, value in zip(key, values, strict=True):
                if name == "sex":
                    assert (
                        value["coding"][0]["system"] == "http://hl7.org/fhir/administrative-gender"
                    )
                    assert value["coding"][0]["code"] in ADMINISTRATIVE_GENDER
                if name == "age-band":
                    assert value["coding"][0]["code"] in {"18-39", "80+"}
            for population in stratum["population"]:
                assert population["code"]["coding"][0]["code"] in MEASURE_POPULATION
            why = stratum.get("extension", [])
            if why:  # suppressed: no numbers, masked, and why
                assert all(
                    "count" not in p and p["_count"] == MASKED for p in stratum["population"]
                )
                assert "measureScore" not in stratum
                code = why[0]["valueCodeableConcept"]["coding"][0]["code"]
                assert code in {"primary", "complementary"}
                assert why[0]["valueCodeableConcept"]["text"]
            else:
                assert [p["count"] for p in stratum["population"]] == [50, 2, 30]
    sexes_seen = {
        c["value"]["coding"][0]["code"]
        for strata in stratifiers.values()
        for s in strata
        for c in s.get(
            "component", [{"code": {"coding": [{"code": ""}]}, "value": s.get("value", {})}]
        )
        if c["code"]["coding"][0]["code"] in ("sex", "")
        and "coding" in c["value"]
        and c["value"]["coding"][0]["system"].endswith("administrative-gender")
    }
    assert sexes_seen == {"female", "male", "other"}


def test_a_zero_is_a_zero_and_a_rate_is_per_patient_years() -> None:
    zero = _cell("gp-de-linde", "", 0, pb.SUPPRESSION_NONE)
    zero.values.numerator = 0
    rate = _cell("", "", 0, pb.SUPPRESSION_NONE, patient_years=DoubleValue(value=120.0))
    report = pb.Report(
        name="reports/r-2",
        period_start=Timestamp(seconds=1_704_067_200),
        period_end=Timestamp(seconds=1_711_843_200),
        cells=[rate, zero],
    )
    group = valid(outcomes.measure_report(report, CODES))["group"][0]
    assert group["measureScore"]["unit"] == "per 100 patiëntjaren"
    assert "code" not in group["measureScore"]
    [stratum] = group["stratifier"][0]["stratum"]
    assert stratum["population"][2] == {
        "code": {"coding": [{"system": outcomes.MEASURE_POPULATION, "code": "numerator"}]},
        "count": 0,
    }

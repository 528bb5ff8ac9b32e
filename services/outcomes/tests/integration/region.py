"""A synthetic region with known structure: four practices, every programme, strata of
0-25 patients (many of 3-12), patients outside the age range or too recently enrolled,
patients in two programmes, and measurements from every source kind, inside and outside
the windows, so that each rule of each indicator is exercised."""

from __future__ import annotations

import datetime as dt
import itertools
import random

from outcomes.models import Programme, Sex, SourceKind
from outcomes.repository import MeasurementTuple
from outcomes.unit_of_work import UnitOfWork
from outcomes.use_cases import enrolments

PRACTICES = [
    ("prac-a", "01000001"),
    ("prac-b", "01000002"),
    ("prac-c", "01000003"),
    ("prac-d", "01000004"),
]
BANDS = {
    "18-39": (1986, 2007),
    "40-59": (1966, 1985),
    "60-69": (1956, 1965),
    "70-79": (1946, 1955),
    "80+": (1925, 1945),
}
SIZES = [0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 20]
CODES = {
    Programme.DM2: ["HBA1C", "SBP", "LDL", "EGFR", "FOOT_EXAM", "FUNDUS_EXAM", "PAM_LEVEL"],
    Programme.COPD: [
        "SPIROMETRY",
        "INHALER_TECHNIQUE",
        "SMOKING_STATUS",
        "CCQ",
        "MRC",
        "FLU_VACCINATION",
        "EXACERBATION",
        "PAM_LEVEL",
    ],
    Programme.CVRM: ["SMOKING_STATUS", "EXERCISE_STATUS", "SBP", "PAM_LEVEL"],
}
SOURCES = [
    (SourceKind.KIS, "prac-a"),
    (SourceKind.LAB, "lab-x"),
    (SourceKind.HOSPITAL, "hosp-y"),
    (SourceKind.INSURER_CLAIMS, "ins-z"),
    (SourceKind.PATIENT, "pgo-q"),
]


def _value(rng: random.Random, code: str) -> tuple[float, str]:
    from outcomes.codes import code_table

    entry = code_table()[code]
    if entry.unit.startswith("{"):
        return float(rng.randint(int(entry.min_value), int(entry.max_value))), entry.unit
    if code == "HBA1C":
        return float(rng.choice([48, 52, 53, 54, 58, 59, 64, 65, 72])), entry.unit
    if code == "SBP":
        return float(rng.choice([125, 139, 140, 141, 160])), entry.unit
    if code == "LDL":
        return rng.choice([1.7, 2.5, 2.6, 2.7, 3.4]), entry.unit
    return round(rng.uniform(entry.min_value, min(entry.max_value, 120)), 1), entry.unit


def build(uow: UnitOfWork, care_group: str, seed: int, stamp: dt.datetime) -> int:
    rng = random.Random(seed)
    n = 0
    rows: list[MeasurementTuple] = []
    for (practice, agb), programme, band, sex in itertools.product(
        PRACTICES, list(Programme), list(BANDS), [Sex.FEMALE, Sex.MALE]
    ):
        for _ in range(rng.choice(SIZES)):
            n += 1
            patient = f"s-{n:05d}"
            lo, hi = BANDS[band]
            start = dt.datetime(
                rng.choice([2015, 2019, 2023, 2024, 2025]), rng.randint(1, 12), 1, tzinfo=dt.UTC
            )
            programmes = [programme]
            if rng.random() < 0.1:
                programmes.append(rng.choice([p for p in Programme if p is not programme]))
            for prog in programmes:
                enrolments.store_enrolment(
                    uow,
                    care_group,
                    enrolments.EnrolmentInput(
                        patient, prog, practice, agb, start, "", rng.randint(lo, hi), sex
                    ),
                    stamp,
                )
            seq = 0
            for code in CODES[programme]:
                for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
                    kind, org = rng.choice(SOURCES)
                    value, unit = _value(rng, code)
                    when = dt.datetime(2022, 6, 1, tzinfo=dt.UTC) + dt.timedelta(
                        days=rng.randint(0, 1340), hours=rng.randint(0, 23)
                    )
                    seq += 1
                    rows.append(
                        (
                            care_group,
                            patient,
                            code,
                            value,
                            unit,
                            when,
                            kind.value,
                            org,
                            f"{care_group}-{patient}-{seq}",
                            stamp,
                        )
                    )
    uow.repo.insert_measurements(rows)
    return n

"""The ten seed indicators over a generated region (150,000 patients, about 20 million
measurements) as the service computes them (SQL generated from the definitions, agreed
sources in priority order) against hand-written SQL for the same counts, in the same run.
Goal: the generated SQL takes at most 1.2x the hand-written time; counts identical.

The region is generated inside PostgreSQL with generate_series (no rows pass through
Python); indexes are built after loading. ``--quick`` uses 15,000 patients.

    .venv/bin/python bench/outcomes_indicators.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import psycopg
from harness import libpq

from outcomes import indicators, reporting
from outcomes.deps import Deps
from outcomes.models import DEFAULT_SOURCE_PRIORITY
from outcomes.unit_of_work import UnitOfWork
from outcomes.use_cases.indicators import load_definitions
from servicekit.db import make_engine, make_session_factory
from servicekit.migrations import upgrade
from testkit.database import create_database, drop_database

CG = "cg-bench"
END = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SEED = [
    "DM2_HBA1C_MEASURED",
    "DM2_HBA1C_AT_TARGET",
    "DM2_HBA1C_BANDS",
    "DM2_SBP_BELOW_140",
    "DM2_LDL_BELOW_2_6",
    "DM2_EGFR_MEASURED",
    "DM2_FOOT_EXAM_12M",
    "DM2_FUNDUS_36M",
    "COPD_LUNG_FUNCTION",
    "CVRM_ROUTINE_CHECK",
]
# code, unit, low, high (categorical codes get whole numbers)
CODES = [
    ("HBA1C", "mmol/mol", 35, 90),
    ("SBP", "mm[Hg]", 100, 180),
    ("DBP", "mm[Hg]", 60, 100),
    ("LDL", "mmol/L", 1, 4.5),
    ("NON_HDL", "mmol/L", 1.5, 6),
    ("EGFR", "mL/min/{1.73_m2}", 20, 110),
    ("ACR", "mg/mmol", 0, 40),
    ("WEIGHT", "kg", 50, 130),
    ("BMI", "kg/m2", 18, 40),
    ("SMOKING_STATUS", "{status}", 0, 2),
    ("EXERCISE_STATUS", "{status}", 0, 2),
    ("FOOT_EXAM", "{grade}", 0, 4),
    ("FUNDUS_EXAM", "{result}", 0, 1),
    ("SPIROMETRY", "%", 30, 110),
    ("INHALER_TECHNIQUE", "{result}", 0, 1),
    ("FLU_VACCINATION", "{event}", 1, 1),
    ("EXACERBATION", "{event}", 1, 1),
    ("PAM_LEVEL", "{level}", 1, 4),
    ("CCQ", "{score}", 0, 6),
    ("MRC", "{grade}", 1, 5),
]


def generate(url: str, patients: int, per_patient: int) -> float:
    started = time.perf_counter()
    codes = ", ".join(f"({i}, '{c}', '{u}', {lo}, {hi})" for i, (c, u, lo, hi) in enumerate(CODES))
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("DROP INDEX ix_measurements_patient_code")
        conn.execute("ALTER TABLE measurements DROP CONSTRAINT uq_measurements_source_record")
        conn.execute(f"""
INSERT INTO enrolments (care_group_id, patient_id, programme, practice_id, practice_agb, start_time,
                        main_practitioner, birth_year, sex, create_time)
SELECT '{CG}', 'b-' || g, (ARRAY['DM2','DM2','COPD','CVRM'])[1 + g % 4], 'prac-' || (g % 75),
       lpad((1000000 + g % 75)::text, 8, '0'),
       timestamptz '2014-01-01' + ((g * 37) % 4000) * interval '1 day', '',
       1925 + (g * 7919) % 80, (ARRAY['F','M'])[1 + (g * 31) % 2], now() - interval '1 day'
FROM generate_series(1, {patients}) g""")
        conn.execute(f"""
INSERT INTO measurements (care_group_id, patient_id, code, value, unit, measured_at, source_kind,
                          source_org, source_record_id, ingested_at)
SELECT '{CG}', 'b-' || p, c.code,
       CASE WHEN c.unit LIKE '{{%' THEN round(c.lo + ((p * 31 + k * 17) % 1000) / 999.0 * (c.hi - c.lo))
            ELSE c.lo + ((p * 31 + k * 17) % 1000) / 999.0 * (c.hi - c.lo) END,
       c.unit, timestamptz '2023-01-01' + ((p * 7 + k * 13) % 1095) * interval '1 day' + (k % 24) * interval '1 hour',
       (ARRAY['KIS','LAB','HOSPITAL','INSURER_CLAIMS','PATIENT'])[1 + (p + k * 3) % 5], 'org-bench',
       p || '-' || k, now() - interval '1 day'
FROM generate_series(1, {patients}) p
CROSS JOIN generate_series(1, {per_patient}) k
JOIN (VALUES {codes}) AS c(n, code, unit, lo, hi) ON c.n = (p * 3 + k * 7) % {len(CODES)}""")
        conn.execute(
            "CREATE INDEX ix_measurements_patient_code ON measurements "
            "(care_group_id, code, patient_id, measured_at)"
        )
        conn.execute(
            "ALTER TABLE measurements ADD CONSTRAINT uq_measurements_source_record "
            "UNIQUE (source_kind, source_org, source_record_id)"
        )
        conn.execute("VACUUM ANALYZE enrolments")
        conn.execute("VACUUM ANALYZE measurements")
    return time.perf_counter() - started


def hand_sql(code: str) -> str:
    """Hand-written SQL (DISTINCT ON, GROUP BY, plain joins) for one seed indicator."""
    ranks = ", ".join(f"('{s.value}', {i})" for i, s in enumerate(DEFAULT_SOURCE_PRIORITY))
    spec = {
        "DM2_HBA1C_MEASURED": ("'DM2'", 79, 12, ["HBA1C"], "false", "h.n0 > 0", None),
        "DM2_HBA1C_AT_TARGET": (
            "'DM2'",
            79,
            12,
            ["HBA1C"],
            "age >= 70 OR h.n0 IS NULL",
            "h.v0 <= 53",
            None,
        ),
        "DM2_HBA1C_BANDS": (
            "'DM2'",
            79,
            12,
            ["HBA1C"],
            "h.n0 IS NULL",
            None,
            "CASE WHEN h.v0 <= 53 THEN '<=53' WHEN h.v0 <= 58 THEN '54-58' "
            "WHEN h.v0 <= 64 THEN '59-64' ELSE '>64' END",
        ),
        "DM2_SBP_BELOW_140": ("'DM2'", 79, 12, ["SBP"], "h.n0 IS NULL", "h.v0 < 140", None),
        "DM2_LDL_BELOW_2_6": ("'DM2'", 79, 12, ["LDL"], "h.n0 IS NULL", "h.v0 < 2.6", None),
        "DM2_EGFR_MEASURED": ("'DM2'", 79, 12, ["EGFR"], "false", "h.n0 > 0", None),
        "DM2_FOOT_EXAM_12M": ("'DM2'", 79, 12, ["FOOT_EXAM"], "false", "h.n0 > 0", None),
        "DM2_FUNDUS_36M": ("'DM2'", 79, 36, ["FUNDUS_EXAM"], "false", "h.n0 > 0", None),
        "COPD_LUNG_FUNCTION": ("'COPD'", 120, 12, ["SPIROMETRY"], "false", "h.n0 > 0", None),
        "CVRM_ROUTINE_CHECK": (
            "'CVRM'",
            120,
            12,
            ["SMOKING_STATUS", "EXERCISE_STATUS", "SBP"],
            "false",
            "(h.n0 > 0)::int + (h.n1 > 0)::int + (h.n2 > 0)::int >= 2",
            None,
        ),
    }[code]
    programme, max_age, lookback, codes, excl, num, band = spec
    code_list = ", ".join(f"'{c}'" for c in codes)
    pivots = ", ".join(
        f"SUM(CASE WHEN code = '{c}' THEN cnt END) AS n{i}, MAX(CASE WHEN code = '{c}' THEN last_value END) AS v{i}"
        for i, c in enumerate(codes)
    )
    final = (
        f"""SELECT practice_id, age_band, sex, CASE WHEN ex THEN '' ELSE {band.replace("h.", "")} END, COUNT(*),
       COUNT(*) FILTER (WHERE ex), COUNT(*) FILTER (WHERE NOT ex)
FROM q GROUP BY 1, 2, 3, 4"""
        if band
        else """SELECT practice_id, age_band, sex, '', COUNT(*), COUNT(*) FILTER (WHERE ex),
       COUNT(*) FILTER (WHERE NOT ex AND nm)
FROM q GROUP BY 1, 2, 3"""
    )
    return f"""
WITH pop AS (
  SELECT DISTINCT ON (patient_id) patient_id, practice_id, sex, 2025 - birth_year AS age
  FROM enrolments
  WHERE care_group_id = '{CG}' AND programme IN ({programme})
    AND start_time <= timestamptz '2026-01-01' - interval '12 months'
    AND 2025 - birth_year BETWEEN 18 AND {max_age}
  ORDER BY patient_id, start_time, programme
),
ranks(kind, rnk) AS (VALUES {ranks}),
w AS (
  SELECT m.id, m.patient_id, m.code, m.value, m.measured_at, r.rnk
  FROM measurements m JOIN ranks r ON r.kind = m.source_kind
  WHERE m.care_group_id = '{CG}' AND m.code IN ({code_list})
    AND m.measured_at >= timestamptz '2026-01-01' - interval '{lookback} months'
    AND m.measured_at < timestamptz '2026-01-01'
),
best AS (SELECT patient_id, code, MIN(rnk) AS rnk FROM w GROUP BY 1, 2),
chosen AS (SELECT w.* FROM w JOIN best b USING (patient_id, code) WHERE w.rnk = b.rnk),
lastv AS (
  SELECT DISTINCT ON (patient_id, code) patient_id, code, value AS last_value
  FROM chosen ORDER BY patient_id, code, measured_at DESC, id DESC
),
counts AS (SELECT patient_id, code, COUNT(*) AS cnt FROM chosen GROUP BY 1, 2),
per AS (
  SELECT c.patient_id, {pivots}
  FROM counts c JOIN lastv l USING (patient_id, code) GROUP BY c.patient_id
),
q AS (
  SELECT pop.practice_id, pop.sex,
         CASE WHEN age < 40 THEN '18-39' WHEN age < 60 THEN '40-59' WHEN age < 70 THEN '60-69'
              WHEN age < 80 THEN '70-79' ELSE '80+' END AS age_band,
         COALESCE({excl}, false) AS ex, COALESCE({num or "false"}, false) AS nm, h.*
  FROM pop LEFT JOIN per h ON h.patient_id = pop.patient_id
)
{final}"""


def _norm(rows: list[tuple[object, ...]]) -> list[tuple[str, str, str, str, int, int, int]]:
    return sorted(
        (
            str(r[0]),
            str(r[1]),
            str(r[2]),
            str(r[3] or ""),
            int(str(r[4])),
            int(str(r[5] or 0)),
            int(str(r[6] or 0)),
        )
        for r in rows
    )


def main() -> None:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="15,000 patients instead of 150,000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    patients = 15_000 if args.quick else 150_000
    per_patient = 133  # about 20 million measurements for 150,000 patients
    url = create_database("bench_outcomes_ind")
    try:
        upgrade("outcomes.migrations", url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        deps = Deps(uow=lambda: UnitOfWork(sessions), identity=None)  # type: ignore[arg-type]
        load_definitions(deps)
        generated_in = generate(url, patients, per_patient)
        with psycopg.connect(libpq(url)) as conn:
            measurements = conn.execute("SELECT COUNT(*) FROM measurements").fetchone()
        print(
            f"generated {patients:,} patients, {measurements[0] if measurements else 0:,} measurements in {generated_in:.0f}s"
        )
        with deps.uow() as uow:
            latest = uow.repo.latest_definitions()
            defs = [indicators.parse(latest[c].definition) for c in SEED]
        sources = list(DEFAULT_SOURCE_PRIORITY)
        cutoff = dt.datetime.now(dt.UTC)

        def candidate() -> dict[str, list[tuple[str, str, str, str, int, int, int]]]:
            out = {}
            with deps.uow() as uow:
                for d in defs:
                    w = indicators.window(d, END)
                    out[d.code] = _norm(
                        uow.repo.run_indicator(
                            indicators.build_sql(d, sources),
                            {
                                "cg": CG,
                                "ref_year": w.ref_year,
                                "enrolled_by": w.enrolled_by,
                                "window_start": w.window_start,
                                "period_end": END,
                                "cutoff": cutoff,
                            },
                        )
                    )
            return out

        def baseline() -> dict[str, list[tuple[str, str, str, str, int, int, int]]]:
            with psycopg.connect(libpq(url)) as conn:
                return {code: _norm(conn.execute(hand_sql(code)).fetchall()) for code in SEED}

        base_times, cand_times, ratios = [], [], []
        counts_identical = True
        for _ in range(args.rounds):
            t = time.perf_counter()
            expected = baseline()
            base_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            actual = candidate()
            cand_times.append(time.perf_counter() - t)
            ratios.append(cand_times[-1] / base_times[-1])
            counts_identical = counts_identical and actual == expected
        # The whole report: margins, suppression, scores on top of the SQL.
        t = time.perf_counter()
        results = [(d, [reporting.FineRow(*r) for r in actual[d.code]]) for d in defs]
        cells = reporting.build_cells(results, ["practice", "age_band", "sex"])
        cells_seconds = time.perf_counter() - t
        engine.dispose()
    finally:
        drop_database(url)
    summary = {
        "patients": patients,
        "measurements": measurements[0] if measurements else 0,
        "generation_seconds": round(generated_in, 1),
        "hand_sql_seconds": [round(x, 2) for x in base_times],
        "service_sql_seconds": [round(x, 2) for x in cand_times],
        "time_ratio": {
            "median": round(statistics.median(ratios), 3),
            "min": round(min(ratios), 3),
            "max": round(max(ratios), 3),
        },
        "counts_identical": counts_identical,
        "report_cells": len(cells),
        "suppression_and_cells_seconds": round(cells_seconds, 2),
    }
    print(json.dumps(summary, indent=2))
    print(
        f"10 seed indicators: service SQL {statistics.median(cand_times):.1f}s vs hand-written "
        f"{statistics.median(base_times):.1f}s = {statistics.median(ratios):.2f}x "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}); counts identical: {counts_identical}"
    )
    out = Path("build/bench")
    out.mkdir(parents=True, exist_ok=True)
    (out / "outcomes_indicators.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

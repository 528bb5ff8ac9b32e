"""Hand-written PostgreSQL for every seed indicator, independent of the generated SQL:
DISTINCT ON and EXISTS instead of window functions, written per indicator.

Each query returns (practice_id, age_band, sex, band, den, excl, num) like the service's
fine rows, for a care group, the agreed sources in priority order and a period ending on
2026-01-01."""

from __future__ import annotations

END = "timestamptz '2026-01-01 00:00:00+00'"
REF = 2025


def _scaffold(
    care_group: str,
    programmes: str,
    min_age: int,
    max_age: int,
    months: int,
    lookback: int,
    sources: list[str],
) -> str:
    ranks = ", ".join(f"('{s}', {i})" for i, s in enumerate(sources))
    return f"""
WITH pop AS (
  SELECT DISTINCT ON (patient_id) patient_id, practice_id, sex, {REF} - birth_year AS age
  FROM enrolments
  WHERE care_group_id = '{care_group}' AND programme IN ({programmes})
    AND start_time <= {END} - interval '{months} months'
    AND {REF} - birth_year >= {min_age} AND {REF} - birth_year <= {max_age}
  ORDER BY patient_id, start_time, programme
),
ranks(kind, rnk) AS (VALUES {ranks}),
inwin AS (
  SELECT m.*, r.rnk FROM measurements m JOIN ranks r ON r.kind = m.source_kind
  WHERE m.care_group_id = '{care_group}'
    AND m.measured_at >= {END} - interval '{lookback} months' AND m.measured_at < {END}
),
best AS (SELECT patient_id, code, MIN(rnk) AS rnk FROM inwin GROUP BY patient_id, code),
mb AS (SELECT i.* FROM inwin i JOIN best b USING (patient_id, code) WHERE i.rnk = b.rnk),
last AS (
  SELECT DISTINCT ON (patient_id, code) patient_id, code, value FROM mb
  ORDER BY patient_id, code, measured_at DESC, id DESC
),
p AS (
  SELECT pop.*,
    CASE WHEN age < 40 THEN '18-39' WHEN age < 60 THEN '40-59' WHEN age < 70 THEN '60-69'
         WHEN age < 80 THEN '70-79' ELSE '80+' END AS age_band
  FROM pop
)"""


def has(code: str) -> str:
    return f"EXISTS (SELECT 1 FROM mb WHERE mb.patient_id = p.patient_id AND mb.code = '{code}')"


def last(code: str) -> str:
    return f"(SELECT value FROM last WHERE last.patient_id = p.patient_id AND last.code = '{code}')"


def _proportion(scaffold: str, excl: str, num: str) -> str:
    return (
        scaffold
        + f"""
SELECT practice_id, age_band, sex, '' AS band, COUNT(*) AS den,
       COUNT(*) FILTER (WHERE {excl}) AS excl,
       COUNT(*) FILTER (WHERE NOT ({excl}) AND ({num})) AS num
FROM p GROUP BY practice_id, age_band, sex ORDER BY 1, 2, 3"""
    )


def _bands(scaffold: str, excl: str, band: str) -> str:
    return (
        scaffold
        + f""",
q AS (SELECT p.*, ({excl}) AS ex, CASE WHEN ({excl}) THEN '' ELSE {band} END AS b FROM p)
SELECT practice_id, age_band, sex, b, COUNT(*), COUNT(*) FILTER (WHERE ex), COUNT(*) FILTER (WHERE NOT ex)
FROM q GROUP BY practice_id, age_band, sex, b ORDER BY 1, 2, 3, 4"""
    )


def queries(care_group: str, sources: dict[str, list[str]]) -> dict[str, str]:
    def dm2(code: str, lookback: int = 12) -> str:
        return _scaffold(care_group, "'DM2'", 18, 79, 12, lookback, sources[code])

    def copd(code: str) -> str:
        return _scaffold(care_group, "'COPD'", 18, 120, 12, 12, sources[code])

    hb = last("HBA1C")
    pam = last("PAM_LEVEL")
    return {
        "DM2_HBA1C_MEASURED": _proportion(dm2("DM2_HBA1C_MEASURED"), "false", has("HBA1C")),
        "DM2_HBA1C_AT_TARGET": _proportion(
            dm2("DM2_HBA1C_AT_TARGET"), f"age >= 70 OR NOT {has('HBA1C')}", f"{hb} <= 53"
        ),
        "DM2_HBA1C_BANDS": _bands(
            dm2("DM2_HBA1C_BANDS"),
            f"NOT {has('HBA1C')}",
            f"CASE WHEN {hb} <= 53 THEN '<=53' WHEN {hb} <= 58 THEN '54-58' WHEN {hb} <= 64 THEN '59-64' ELSE '>64' END",
        ),
        "DM2_SBP_BELOW_140": _proportion(
            dm2("DM2_SBP_BELOW_140"), f"NOT {has('SBP')}", f"{last('SBP')} < 140"
        ),
        "DM2_LDL_BELOW_2_6": _proportion(
            dm2("DM2_LDL_BELOW_2_6"), f"NOT {has('LDL')}", f"{last('LDL')} < 2.6"
        ),
        "DM2_EGFR_MEASURED": _proportion(dm2("DM2_EGFR_MEASURED"), "false", has("EGFR")),
        "DM2_FOOT_EXAM_12M": _proportion(dm2("DM2_FOOT_EXAM_12M"), "false", has("FOOT_EXAM")),
        "DM2_FUNDUS_36M": _proportion(dm2("DM2_FUNDUS_36M", 36), "false", has("FUNDUS_EXAM")),
        "COPD_LUNG_FUNCTION": _proportion(copd("COPD_LUNG_FUNCTION"), "false", has("SPIROMETRY")),
        "COPD_INHALER_TECHNIQUE": _proportion(
            copd("COPD_INHALER_TECHNIQUE"), "false", has("INHALER_TECHNIQUE")
        ),
        "COPD_SMOKING_STATUS": _proportion(
            copd("COPD_SMOKING_STATUS"), "false", has("SMOKING_STATUS")
        ),
        "COPD_CCQ_MRC": _proportion(
            copd("COPD_CCQ_MRC"), "false", f"{has('CCQ')} AND {has('MRC')}"
        ),
        "COPD_FLU_VACCINATION": _proportion(
            copd("COPD_FLU_VACCINATION"), "false", has("FLU_VACCINATION")
        ),
        "COPD_EXACERBATIONS": copd("COPD_EXACERBATIONS")
        + """
SELECT practice_id, age_band, sex, '', COUNT(*), 0,
       COALESCE(SUM((SELECT COUNT(*) FROM mb WHERE mb.patient_id = p.patient_id AND mb.code = 'EXACERBATION')), 0)
FROM p GROUP BY practice_id, age_band, sex ORDER BY 1, 2, 3""",
        "CVRM_ROUTINE_CHECK": _proportion(
            _scaffold(care_group, "'CVRM'", 18, 120, 12, 12, sources["CVRM_ROUTINE_CHECK"]),
            "false",
            f"({has('SMOKING_STATUS')})::int + ({has('EXERCISE_STATUS')})::int + ({has('SBP')})::int >= 2",
        ),
        "PROM_PAM_LEVELS": _bands(
            _scaffold(
                care_group, "'DM2', 'COPD', 'CVRM'", 18, 120, 0, 12, sources["PROM_PAM_LEVELS"]
            ),
            f"NOT {has('PAM_LEVEL')}",
            f"CASE WHEN {pam} <= 1 THEN '1' WHEN {pam} <= 2 THEN '2' WHEN {pam} <= 3 THEN '3' ELSE '4' END",
        ),
    }

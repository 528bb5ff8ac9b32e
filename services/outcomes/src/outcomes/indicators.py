"""Declarative indicator definitions and the set-based SQL generated from them.

A definition (``indicators/<CODE>.v<N>.json``) names a population (programmes, age range,
time in programme), a numerator rule, exclusions, a lookback window, thresholds, unit and
direction. :func:`build_sql` turns one definition into one SQL statement that returns the
counts per practice x age band x sex (and band), over the agreed sources in priority order:
for each patient and code, only the highest-priority agreed source that has data in the
window counts. Each measurement counts with the value it had at the data cut-off (its
current value, or the revision a later correction replaced), so a report recomputes to the
same cells after corrections. The statement runs on PostgreSQL and on SQLite.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from outcomes.codes import code_table
from outcomes.models import Programme, SourceKind, canonical_json, sha256_hex
from servicekit.errors import Violations

KINDS = ("proportion", "bands", "rate")
RULES = ("measured", "at_least", "last_value", "last_value_band", "events")
OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "="}
DIRECTIONS = ("higher_is_better", "lower_is_better")
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("18-39", 0, 39),
    ("40-59", 40, 59),
    ("60-69", 60, 69),
    ("70-79", 70, 79),
    ("80+", 80, 200),
)
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,62}$")


@dataclass(frozen=True)
class Definition:
    code: str
    version: int
    title: str
    condition: str
    raw: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.raw["kind"])

    @property
    def population(self) -> dict[str, Any]:
        value: dict[str, Any] = self.raw["population"]
        return value

    @property
    def numerator(self) -> dict[str, Any]:
        value: dict[str, Any] = self.raw["numerator"]
        return value

    @property
    def exclusions(self) -> list[dict[str, Any]]:
        value: list[dict[str, Any]] = self.raw.get("exclusions", [])
        return value

    @property
    def lookback_months(self) -> int:
        return int(self.raw["lookback_months"])

    @property
    def thresholds(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.raw.get("thresholds", {}).items()}

    @property
    def direction(self) -> str:
        return str(self.raw.get("direction", "higher_is_better"))

    @property
    def bands(self) -> list[dict[str, Any]]:
        value: list[dict[str, Any]] = self.numerator.get("bands", [])
        return value

    @property
    def band_labels(self) -> list[str]:
        return [str(b["label"]) for b in self.bands]

    @property
    def population_key(self) -> str:
        """Indicators with the same population share one suppression pattern."""
        return canonical_json(self.population)

    @property
    def canonical(self) -> str:
        return canonical_json(self.raw)

    @property
    def content_hash(self) -> str:
        return sha256_hex(self.canonical)

    @property
    def name(self) -> str:
        return f"indicators/{self.code}/versions/{self.version}"

    def codes(self) -> list[str]:
        """Every measurement code the definition reads, in a stable order."""
        found: list[str] = []
        for part in (self.numerator, *self.exclusions):
            for c in [*part.get("codes", []), *([part["code"]] if "code" in part else [])]:
                if c not in found:
                    found.append(c)
        return found


def parse(raw: dict[str, Any]) -> Definition:
    """Validates a definition; raises InvalidArgument listing every problem."""
    v = Violations()
    code = raw.get("code", "")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        v.add("code", "upper-case letters, digits and underscores", "INVALID_INDICATOR_CODE")
    version = raw.get("version")
    if not isinstance(version, int) or version < 1:
        v.add("version", "a positive integer", "INVALID_INDICATOR_VERSION")
    if raw.get("kind") not in KINDS:
        v.add("kind", f"one of {KINDS}", "INVALID_INDICATOR_KIND")
    lookback = raw.get("lookback_months")
    if not isinstance(lookback, int) or not 1 <= lookback <= 120:
        v.add("lookback_months", "between 1 and 120", "INVALID_LOOKBACK")
    if raw.get("direction", "higher_is_better") not in DIRECTIONS:
        v.add("direction", f"one of {DIRECTIONS}", "INVALID_DIRECTION")
    _check_population(raw.get("population") or {}, v)
    _check_rules(raw, v)
    v.raise_if_any()
    return Definition(
        code, int(str(version)), str(raw.get("title", "")), str(raw.get("condition", "")), raw
    )


def _check_population(population: dict[str, Any], v: Violations) -> None:
    programmes = population.get("programmes") or []
    if not programmes or any(p not in Programme.__members__ for p in programmes):
        v.add("population.programmes", "DM2, COPD or CVRM", "INVALID_POPULATION")
    for key in ("min_age", "max_age", "min_months_in_programme"):
        if not isinstance(population.get(key), int):
            v.add(f"population.{key}", "an integer", "INVALID_POPULATION")


def _check_rules(raw: dict[str, Any], v: Violations) -> None:
    table = code_table()
    numerator = raw.get("numerator") or {}
    rule = numerator.get("rule")
    if rule not in RULES:
        v.add("numerator.rule", f"one of {RULES}", "INVALID_RULE")
    expected = {
        "proportion": ("measured", "at_least", "last_value"),
        "bands": ("last_value_band",),
        "rate": ("events",),
    }
    if raw.get("kind") in expected and rule not in expected[raw["kind"]]:
        v.add("numerator.rule", "does not fit the indicator kind", "INVALID_RULE")
    parts = [("numerator", numerator)] + [
        (f"exclusions[{i}]", e) for i, e in enumerate(raw.get("exclusions", []))
    ]
    for part_name, part in parts:
        for c in [*part.get("codes", []), *([part["code"]] if "code" in part else [])]:
            if c not in table:
                v.add(f"{part_name}.codes", f"unknown code {c!r}", "UNKNOWN_CODE")
        exclusion_rules = ("age_at_least", "age_below", "not_measured")
        if part_name != "numerator" and part.get("rule") not in exclusion_rules:
            v.add(f"{part_name}.rule", "age_at_least, age_below or not_measured", "INVALID_RULE")
        for num_key in ("value", "count"):
            if num_key in part and not isinstance(part[num_key], int | float):
                v.add(f"{part_name}.{num_key}", "a number", "INVALID_NUMBER")
    if rule == "last_value" and numerator.get("op") not in OPS:
        v.add("numerator.op", f"one of {sorted(OPS)}", "INVALID_OPERATOR")
    if rule == "last_value_band":
        bands = numerator.get("bands") or []
        if len(bands) < 2 or "max" in bands[-1] or any("max" not in b for b in bands[:-1]):
            v.add("numerator.bands", "at least two; all but the last have a max", "INVALID_BANDS")


def load_files() -> list[Definition]:
    """Every definition file shipped in ``outcomes/indicators``."""
    folder = resources.files("outcomes").joinpath("indicators")
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            found.append(parse(json.loads(entry.read_text())))
    return found


# ------------------------------------------------------------------ periods


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    day = min(moment.day, _days_in(year, month + 1))
    return moment.replace(year=year, month=month + 1, day=day)


def _days_in(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def reference_year(period_end: dt.datetime) -> int:
    """Ages are counted in the last year of the (half-open) period."""
    return (period_end - dt.timedelta(microseconds=1)).year


@dataclass(frozen=True)
class Window:
    period_end: dt.datetime
    window_start: dt.datetime
    enrolled_by: dt.datetime
    ref_year: int


def window(definition: Definition, period_end: dt.datetime) -> Window:
    return Window(
        period_end=period_end,
        window_start=add_months(period_end, -definition.lookback_months),
        enrolled_by=add_months(period_end, -int(definition.population["min_months_in_programme"])),
        ref_year=reference_year(period_end),
    )


# ------------------------------------------------------------------ SQL


def age_band_sql(age: str) -> str:
    whens = " ".join(f"WHEN {age} <= {hi} THEN '{label}'" for label, _lo, hi in AGE_BANDS)
    return f"CASE {whens} END"


def _literal_list(values: list[str]) -> str:
    for value in values:
        if not _CODE.fullmatch(value):
            raise ValueError("not a code")
    return ", ".join(f"'{value}'" for value in values)


def _number(value: Any) -> str:
    return repr(float(value))


def build_sql(definition: Definition, sources: list[SourceKind]) -> str:
    """One statement returning (practice_id, age_band, sex, band, den, excl, num).

    Parameters: ``cg``, ``ref_year``, ``enrolled_by``, ``window_start``, ``period_end``,
    ``cutoff``. ``num`` counts numerator patients (events for rates); for band indicators
    each row is one band of non-excluded patients (``band`` is empty for excluded ones).
    """
    return (
        _common_sql(definition, sources)
        + """
SELECT practice_id, age_band, sex,
       CASE WHEN excl = 1 THEN '' ELSE band END AS band,
       COUNT(*) AS den, SUM(excl) AS excl,
       SUM(CASE WHEN excl = 0 THEN num ELSE 0 END) AS num
FROM pp
GROUP BY practice_id, age_band, sex, CASE WHEN excl = 1 THEN '' ELSE band END
ORDER BY 1, 2, 3, 4
"""
    )


def build_patient_sql(definition: Definition, sources: list[SourceKind]) -> str:
    """Per patient (patient_id, excl, num, band): used inside the service only, to compare
    sources; never returned to a caller."""
    return (
        _common_sql(definition, sources)
        + """
SELECT patient_id, excl, num, band FROM pp ORDER BY patient_id
"""
    )


def _common_sql(definition: Definition, sources: list[SourceKind]) -> str:
    if not sources:
        raise ValueError("at least one source")
    codes = definition.codes()
    idx = {c: i for i, c in enumerate(codes)}
    src_values = ", ".join(f"('{s.value}', {rank})" for rank, s in enumerate(sources))
    agg_cols = ",\n    ".join(
        f"SUM(CASE WHEN code = '{c}' AND rnk = best THEN 1 ELSE 0 END) AS n_{i},\n"
        f"    MAX(CASE WHEN code = '{c}' AND pos = 1 THEN value END) AS v_{i}"
        for c, i in idx.items()
    )
    excl_terms = []
    for e in definition.exclusions:
        if e["rule"] == "age_at_least":
            excl_terms.append(f"pop.age >= {int(e['value'])}")
        elif e["rule"] == "age_below":
            excl_terms.append(f"pop.age < {int(e['value'])}")
        else:
            excl_terms.append(
                "(" + " AND ".join(f"COALESCE(agg.n_{idx[c]}, 0) = 0" for c in e["codes"]) + ")"
            )
    excl = " OR ".join(excl_terms) if excl_terms else "1 = 0"
    n = definition.numerator
    band = "''"
    if n["rule"] == "measured":
        joiner = " AND " if n.get("all") else " OR "
        num = (
            "CASE WHEN "
            + joiner.join(f"COALESCE(agg.n_{idx[c]}, 0) > 0" for c in n["codes"])
            + " THEN 1 ELSE 0 END"
        )
    elif n["rule"] == "at_least":
        parts = " + ".join(
            f"CASE WHEN COALESCE(agg.n_{idx[c]}, 0) > 0 THEN 1 ELSE 0 END" for c in n["codes"]
        )
        num = f"CASE WHEN ({parts}) >= {int(n['count'])} THEN 1 ELSE 0 END"
    elif n["rule"] == "last_value":
        op, limit = OPS[n["op"]], _number(n["value"])
        num = f"CASE WHEN agg.v_{idx[n['code']]} {op} {limit} THEN 1 ELSE 0 END"
    elif n["rule"] == "events":
        num = f"COALESCE(agg.n_{idx[n['code']]}, 0)"
    else:  # last_value_band
        value = f"agg.v_{idx[n['code']]}"
        whens = " ".join(
            f"WHEN {value} <= {_number(b['max'])} THEN '{_band_label(b['label'])}'"
            for b in definition.bands[:-1]
        )
        last = _band_label(definition.bands[-1]["label"])
        band = f"CASE WHEN {value} IS NULL THEN '' {whens} ELSE '{last}' END"
        num = "1"
    population = _population_sql(definition)
    code_list = _literal_list(codes)
    # Every identifier and number above is validated (codes, enums, labels, floats); the
    # values of the request are bound parameters.
    return f"""
WITH pop AS ({population}
),
src (kind, rnk) AS (VALUES {src_values}),
m AS (
  SELECT me.patient_id, me.code, me.value, src.rnk,
         ROW_NUMBER() OVER (PARTITION BY me.patient_id, me.code
                            ORDER BY src.rnk, me.measured_at DESC, me.id DESC) AS pos,
         MIN(src.rnk) OVER (PARTITION BY me.patient_id, me.code) AS best
  FROM (
    SELECT v.id, v.patient_id, v.code, v.value, v.measured_at, v.source_kind
    FROM measurements v
    WHERE v.care_group_id = :cg
      AND v.code IN ({code_list})
      AND v.measured_at >= :window_start AND v.measured_at < :period_end
      AND v.ingested_at <= :cutoff
      AND v.patient_id IN (SELECT patient_id FROM pop)
    UNION ALL
    SELECT r.measurement_id, r.patient_id, r.code, r.value, r.measured_at, r.source_kind
    FROM measurement_revisions r
    WHERE r.care_group_id = :cg
      AND r.code IN ({code_list})
      AND r.measured_at >= :window_start AND r.measured_at < :period_end
      AND r.ingested_at <= :cutoff AND r.superseded_at > :cutoff
      AND r.patient_id IN (SELECT patient_id FROM pop)
  ) me JOIN src ON src.kind = me.source_kind
),
agg AS MATERIALIZED (
  SELECT patient_id,
    {agg_cols}
  FROM m GROUP BY patient_id
),
pp AS (
  SELECT pop.patient_id, pop.practice_id, pop.sex, {age_band_sql("pop.age")} AS age_band,
         CASE WHEN {excl} THEN 1 ELSE 0 END AS excl,
         {num} AS num,
         {band} AS band
  FROM pop LEFT JOIN agg ON agg.patient_id = pop.patient_id
)"""  # noqa: S608


def _population_sql(definition: Definition) -> str:
    """The population, one row per patient. Ages are compared through the birth year and a
    single-programme population needs no de-duplication (one enrolment per programme), so
    the planner's estimates stay close to the truth."""
    pop = definition.population
    programmes = list(pop["programmes"])
    where = f"""e.care_group_id = :cg
      AND e.programme IN ({_literal_list(programmes)})
      AND e.start_time <= :enrolled_by
      AND e.create_time <= :cutoff
      AND e.birth_year BETWEEN :ref_year - {int(pop["max_age"])}
                           AND :ref_year - {int(pop["min_age"])}"""
    if len(programmes) == 1:
        return f"""
  SELECT e.patient_id, e.practice_id, e.sex, :ref_year - e.birth_year AS age
  FROM enrolments e
  WHERE {where}"""  # noqa: S608
    # A patient in several programmes counts once, with the enrolment that started first.
    return f"""
  SELECT patient_id, practice_id, sex, age FROM (
    SELECT e.patient_id, e.practice_id, e.sex, :ref_year - e.birth_year AS age,
           ROW_NUMBER() OVER (PARTITION BY e.patient_id ORDER BY e.start_time, e.programme) AS rn
    FROM enrolments e
    WHERE {where}
  ) ranked WHERE rn = 1"""  # noqa: S608


def _band_label(label: str) -> str:
    if not re.fullmatch(r"[0-9<>=+\-. ]{1,16}", str(label)):
        raise ValueError("band label")
    return str(label)

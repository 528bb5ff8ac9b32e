"""Small-cell protection across indicators (issue 11, point 8), without a database: regions
generated patient type by patient type, with strata of 3 to 12 patients, whose counts are
therefore consistent the way real data is; then the attacker of integration/attacker.py
(hand-written, exact rational arithmetic) solves everything the protected table publishes.

Also the relations between indicators (outcomes.relations) checked against patients: each
relation holds for every generated region (none is made up)."""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from outcomes import indicators
from outcomes.protection import IndicatorTable, protect_tables, small
from outcomes.relations import local_relations
from outcomes.suppression import lines_of
from outcomes.use_cases.reports import PROTECTION_RULE

from ..integration import attacker

DEFINITIONS = {d.code: d for d in indicators.load_files()}
# Definitions no seed has, for populations whose strata fall in more than two age classes:
# SBP below 140 for 40-59 year olds only (age limits at 40 and 60). Age limits put it in one
# group with DM2_HBA1C_AT_TARGET (limit 70) and, through SBP, with DM2_SBP_BELOW_140 and the
# HbA1c indicators: three age classes (18-39 and 60-69 alike, 40-59, 70-79).
SBP_40_59 = indicators.parse(
    {
        **json.loads(DEFINITIONS["DM2_SBP_BELOW_140"].canonical),
        "code": "DM2_SBP_40_59",
        "title": "Last systolic blood pressure below 140 mmHg, 40-59 year olds",
        "exclusions": [
            {"rule": "not_measured", "codes": ["SBP"]},
            {"rule": "age_below", "value": 40},
            {"rule": "age_at_least", "value": 60},
        ],
    }
)
# And LDL below 2.6 from age 40: with both, the group's four age bands are four age classes.
LDL_FROM_40 = indicators.parse(
    {
        **json.loads(DEFINITIONS["DM2_LDL_BELOW_2_6"].canonical),
        "code": "DM2_LDL_FROM_40",
        "title": "Last LDL below 2.6 mmol/l, from 40 years",
        "exclusions": [
            {"rule": "not_measured", "codes": ["LDL"]},
            {"rule": "age_below", "value": 40},
        ],
    }
)
SEED_CODES = list(DEFINITIONS)
DEFINITIONS[SBP_40_59.code] = SBP_40_59
DEFINITIONS[LDL_FROM_40.code] = LDL_FROM_40
SOURCES = ("LAB", "KIS")
POPULATIONS = {
    "DM2": [c for c in SEED_CODES if c.startswith("DM2_")],
    "COPD": [c for c in SEED_CODES if c.startswith("COPD_")],
    "CVRM": ["CVRM_ROUTINE_CHECK"],
    "PROM": ["PROM_PAM_LEVELS"],
    # DM2 with the four-class group (the population's patients are DM2's).
    "DM2X": [*(c for c in SEED_CODES if c.startswith("DM2_")), SBP_40_59.code, LDL_FROM_40.code],
}
BANDS = {"DM2": ["18-39", "40-59", "60-69", "70-79"], "DM2X": ["18-39", "40-59", "60-69", "70-79"]}
AGES = {
    "18-39": (18, 39),
    "40-59": (40, 59),
    "60-69": (60, 69),
    "70-79": (70, 79),
    "80+": (80, 120),
}
Key = attacker.Key


def _types(pop: str, s: Key) -> list[str]:
    """The attacker's unknowns of one stratum that are patient counts (not D, not events)."""
    out: list[str] = []
    for code in POPULATIONS[pop]:
        for quantity in ("excl", "num", *(f"num:{lb}" for lb in DEFINITIONS[code].band_labels)):
            if quantity == "num" and DEFINITIONS[code].kind == "bands":
                continue
            out += [u for u in attacker.fine(code, s, quantity) if not u.startswith("D|")]
    return sorted(set(out))


def _groups(names: list[str]) -> dict[str, list[str]]:
    """Unknowns by the code they describe: a patient falls in at most one of each group."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        groups[name.split("|")[0]].append(name)
    return groups


def patients(pop: str, seed: int) -> list[dict[str, Any]]:
    """The patients of a generated region: every stratum 0 or 3-12 patients, each patient
    with a random class per code (possibly none), COPD patients with 0-3 events. Each is
    ``{"stratum", "types": group -> unknown (or events), "options": group -> unknowns}``."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    practices = ["p1", "p2", "p3"][: rng.randint(2, 3)]
    for practice in practices:
        for band in BANDS.get(pop, ["18-39", "40-59", "60-69", "70-79", "80+"]):
            for sex in ("F", "M"):
                s = (practice, band, sex)
                size = rng.choice([0, *range(3, 13), *range(3, 13)])
                groups = _groups(_types(pop, s))
                for _patient in range(size):
                    types: dict[str, Any] = {}
                    for code, names in groups.items():
                        if code == "EXACERBATION":
                            types[code] = rng.choice([0, 0, 1, 2, 3])
                            continue
                        choice = rng.randrange(len(names) + 1)
                        types[code] = names[choice] if choice < len(names) else None
                    out.append({"stratum": s, "types": types, "options": dict(groups)})
    return out


def totals(pop: str, people: list[dict[str, Any]]) -> dict[str, int]:
    """Counts of patient types per fine stratum."""
    counts: dict[str, int] = defaultdict(int)
    for p in people:
        counts[f"D|{'/'.join(p['stratum'])}|{attacker.population(POPULATIONS[pop][0])}"] += 1
        for code, value in p["types"].items():
            if code == "EXACERBATION":
                counts[p["options"][code][0]] += value
            elif value is not None:
                counts[value] += 1
    return dict(counts)


def region(pop: str, seed: int) -> dict[str, int]:
    """Counts of patient types per fine stratum of a generated region (:func:`patients`)."""
    return totals(pop, patients(pop, seed))


def _value(vector: attacker.Vector, counts: dict[str, int]) -> int:
    return sum(c * counts.get(name, 0) for name, c in vector.items())


def _stratum(name: str) -> Key:
    practice, band, sex = name.split("|")[1].split("/")
    return (practice, band, sex)


def tables(pop: str, counts: dict[str, int]) -> tuple[list[IndicatorTable], list[Key]]:
    fine: list[Key] = sorted(
        _stratum(name) for name, n in counts.items() if name.startswith("D|") and n > 0
    )
    keys: list[Key] = sorted(
        {(p, a, x) for s in fine for p in (s[0], "") for a in (s[1], "") for x in (s[2], "")}
    )
    out = []
    for code in POPULATIONS[pop]:
        d = DEFINITIONS[code]

        def count(key: Key, quantity: str, code: str = code) -> int:
            return _value(attacker.vector(code, key, quantity, fine), counts)

        out.append(
            IndicatorTable(
                definition=d,
                sources=SOURCES,
                den={k: count(k, "den") for k in keys},
                excl={k: count(k, "excl") for k in keys},
                num={k: 0 if d.kind == "bands" else count(k, "num") for k in keys},
                bands={(*k, lb): count(k, f"num:{lb}") for k in keys for lb in d.band_labels},
            )
        )
    return out, fine


def _key(key: tuple[str, ...]) -> Key:
    practice, band, sex = key
    return (practice, band, sex)


def _cell_counts(t: IndicatorTable, key: Key, label: str) -> list[dict[str, int]]:
    num = f"num:{label}" if label else "num"
    out = [{num: 1}, {"den": 1}, {"excl": 1}, {"den": 1, "excl": -1}]
    if t.definition.kind != "rate":
        out += [{"den": 1, num: -1}, {"den": 1, "excl": -1, num: -1}]
    return out


def attack(
    pop: str, counts: dict[str, int], rule: str = PROTECTION_RULE, sums: bool = True
) -> tuple[int, list[Any]]:
    """(small hidden counts, those the attacker determines). With ``sums`` the attacker
    also adds up hidden cells: every sum of two or more hidden cells of one line (e.g. all
    practices' cells of an age band, subtracted from a shown total) for every count a cell
    publishes or implies."""
    ts, fine = tables(pop, counts)
    first, extra = protect_tables(ts, rule)
    return attack_tables(ts, fine, first | extra, sums)


def attack_tables(
    ts: list[IndicatorTable], fine: list[Key], hidden: set[Any], sums: bool = True
) -> tuple[int, list[Any]]:
    """The attack of :func:`attack` on tables protected already (``hidden``)."""
    space = attacker.RowSpace()
    for t in ts:
        for key in map(_key, t.den):
            for label in t.labels():
                if (t.definition.code, key, label) in hidden:
                    continue
                for q in t.quantities(key, label):
                    space.add(attacker.vector(t.definition.code, key, q, fine))
    small_hidden, found = 0, []
    for t in ts:
        for key in map(_key, t.den):
            for label in t.labels():
                unit = (t.definition.code, key, label)
                values = {q: t.value(key, q) for q in t.quantities(key, label)}
                for vector in _cell_counts(t, key, label):
                    value = sum(c * values[q] for q, c in vector.items())
                    if not small(value):
                        continue
                    assert unit in hidden, (unit, vector, value)  # nothing small is shown
                    small_hidden += 1
                    v: attacker.Vector = {}
                    for q, c in vector.items():
                        for name, x in attacker.vector(t.definition.code, key, q, fine).items():
                            v[name] = v.get(name, 0) + c * x
                    if space.determines({n: x for n, x in v.items() if x}):
                        found.append((unit, vector, value))
    if sums:
        found += _attack_sums(ts, fine, hidden, space)
    return small_hidden, found


def _attack_sums(
    ts: list[IndicatorTable], fine: list[Key], hidden: set[Any], space: attacker.RowSpace
) -> list[Any]:
    """Sums of two or more hidden cells of one line that the attacker determines and that
    are small."""
    found: list[Any] = []
    keys = sorted(map(_key, ts[0].den))
    for _parent, kids in lines_of(keys):
        for t in ts:
            for label in t.labels():
                code = t.definition.code
                shut = [_key(k) for k in kids if (code, k, label) in hidden]
                for size in range(2, len(shut) + 1):
                    for subset in itertools.combinations(shut, size):
                        for vector in _cell_counts(t, subset[0], label):
                            value = sum(
                                c * t.value(k, q) for k in subset for q, c in vector.items()
                            )
                            if not small(value):
                                continue
                            v: attacker.Vector = {}
                            for k in subset:
                                for q, c in vector.items():
                                    for name, x in attacker.vector(code, k, q, fine).items():
                                        v[name] = v.get(name, 0) + c * x
                            if space.determines({n: x for n, x in v.items() if x}):
                                found.append((code, subset, label, vector, value))
    return found


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6))
# 3064: a small count determined although every cell on its lines was suppressed already
# (it followed through them); protection raised "a small cell cannot be protected".
@example(seed=3064)
# 1336: under strata-v2, three hidden age bands of DM2_FOOT_EXAM_12M for women added up to 9
# patients not examined (their line's total shown).
@example(seed=1336)
def test_no_small_count_of_dm2_is_determined_by_what_the_protected_table_publishes(
    seed: int,
) -> None:
    small_hidden, found = attack("DM2", region("DM2", seed))
    assert found == []
    assert small_hidden > 0


def test_the_rule_before_leaves_small_sums_of_hidden_cells_that_the_attacker_recovers() -> None:
    """strata-v2 (still used to recompute the reports computed under it) protected every
    hidden count on its own, not their sums."""
    _small, found = attack("DM2", region("DM2", 1336), rule="strata-v2")
    sums = [f for f in found if isinstance(f[1], tuple) and isinstance(f[1][0], tuple)]
    assert sums
    _small, found = attack("DM2", region("DM2", 1336))
    assert found == []


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_no_small_count_is_determined_in_a_group_of_four_age_classes(seed: int) -> None:
    """DM2 with DM2_SBP_40_59 and DM2_LDL_FROM_40: the group of the HbA1c, SBP and LDL
    indicators has strata in four age classes, each with its own relations (the seed
    indicators have at most two)."""
    ts, _fine = tables("DM2X", region("DM2X", seed))
    assert len(_classes(ts)) == 4
    small_hidden, found = attack("DM2X", region("DM2X", seed))
    assert found == []
    assert small_hidden > 0


def _classes(ts: list[IndicatorTable]) -> set[str]:
    """The distinct relations of the group of the aged indicators, one per age class."""
    group = [t for t in ts if set(t.definition.codes()) & {"SBP", "HBA1C", "LDL"}]
    plan = [(t.definition, list(SOURCES)) for t in group]
    return {
        repr(sorted(map(sorted, (r.items() for r in local_relations(plan, AGES[b])))))
        for b in BANDS["DM2X"]
    }


@pytest.mark.parametrize("pop", ["COPD", "CVRM", "PROM"])
@pytest.mark.parametrize("seed", range(6))
def test_no_small_count_of_the_other_populations_is_determined(pop: str, seed: int) -> None:
    small_hidden, found = attack(pop, region(pop, seed))
    assert found == [] and small_hidden > 0


def test_the_issues_example_a_hidden_exclusion_is_not_the_published_complement_of_another() -> None:
    """Women 18-39: 30 in DM2, 25 with an HbA1c (published by DM2_HBA1C_MEASURED in the
    issue), so DM2_HBA1C_AT_TARGET excludes 5. The exclusion count is hidden and so is
    whatever would give it away, in every indicator."""
    s = ("p1", "18-39", "F")
    other = ("p1", "40-59", "F")
    counts = {"D|p1/18-39/F|DM2": 30, "D|p1/40-59/F|DM2": 40}
    for stratum, classes in ((s, (14, 6, 3, 2)), (other, (20, 10, 5, 5))):
        for c, n in zip(attacker.HBA1C, classes, strict=True):
            counts[f"HBA1C|{'/'.join(stratum)}|{c}"] = n
        for code in ("SBP", "LDL"):
            counts[f"{code}|{'/'.join(stratum)}|below"] = 15
            counts[f"{code}|{'/'.join(stratum)}|above"] = 12
        for code in ("EGFR", "FOOT_EXAM", "FUNDUS_EXAM"):
            counts[f"{code}|{'/'.join(stratum)}|has"] = 20
    ts, _fine = tables("DM2", counts)
    by_code = {t.definition.code: t for t in ts}
    assert by_code["DM2_HBA1C_AT_TARGET"].excl[s] == 5
    assert by_code["DM2_HBA1C_MEASURED"].num[s] == 25
    first, extra = protect_tables(ts)
    hidden = first | extra
    assert ("DM2_HBA1C_AT_TARGET", s, "") in first
    assert ("DM2_HBA1C_MEASURED", s, "") in hidden  # 30 - 25 = 5: small too
    _small, found = attack("DM2", counts)
    assert found == []


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10**6), pop=st.sampled_from(sorted(POPULATIONS)))
def test_every_relation_between_indicators_holds_in_every_stratum(seed: int, pop: str) -> None:
    counts = region(pop, seed)
    ts, fine = tables(pop, counts)
    plan = [(t.definition, list(SOURCES)) for t in ts]
    by_code = {t.definition.code: t for t in ts}
    for s in fine:
        low, high = AGES[s[1]]
        pop_def = ts[0].definition.population
        ages = (max(low, int(pop_def["min_age"])), min(high, int(pop_def["max_age"])))
        relations = local_relations(plan, ages)
        assert relations
        for relation in relations:
            total = 0
            for name, coeff in relation.items():
                code, quantity = name.split("#")
                total += coeff * by_code[code].value(s, quantity)
            assert total == 0, (s, relation)

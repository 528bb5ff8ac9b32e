"""An attacker's model of what a contract's reports publish, written by hand for the seed
indicators and independent of the service's protection code (outcomes.relations and
outcomes.protection are not used here).

The unknowns are counts of patient types per fine stratum (practice x age band x sex):
per population the stratum's patients ``D``, and per code the patients whose best agreed
source has a value of each class (HbA1c <=53, 54-58, 59-64, >64; SBP <140 or not; LDL < 2.6
or not; measured or not for the other codes; the combinations of codes an indicator reads
together), COPD exacerbation events. With every indicator of a code reading the same agreed
sources, every count a report cell publishes is a sum of these unknowns: the attacker's
linear system is every published count plus these definitions, which carry every relation
between indicators (same denominators, exclusions = denominator - another's numerator,
bands summing to the measured patients, a numerator that is zero under an age limit).

A hidden count is *determined* when its vector lies in the row space of the published
vectors; that is decided exactly, with fractions.Fraction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction

Vector = dict[str, int]  # unknown -> coefficient
Key = tuple[str, str, str]

HBA1C = ("<=53", "54-58", "59-64", ">64")
POPULATION = {
    "DM2": "DM2",
    "COPD": "COPD",
    "CVRM": "CVRM",
    "PROM": "PROM",
}
CVRM_COMBOS = [(s, e, b) for s in (0, 1) for e in (0, 1) for b in (0, 1) if (s, e, b) != (0, 0, 0)]


def population(indicator: str) -> str:
    return indicator.split("_", 1)[0]


def _u(name: str, s: Key, part: str = "") -> str:
    return f"{name}|{'/'.join(s)}|{part}"


def _measured(code: str, s: Key) -> Vector:
    return {_u(code, s, "has"): 1}


def _total(names: Iterable[str]) -> Vector:
    return dict.fromkeys(names, 1)


def _minus(a: Vector, b: Vector) -> Vector:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) - v
    return {k: v for k, v in out.items() if v}


def fine(indicator: str, s: Key, quantity: str) -> Vector:
    """The vector of one quantity (den, excl, num or num:<band>) of one indicator in one
    fine stratum ``s`` = (practice, age band, sex)."""
    pop = population(indicator)
    den = {_u("D", s, pop): 1}
    if quantity == "den":
        return den
    hba1c = _total(_u("HBA1C", s, c) for c in HBA1C)
    excl: Vector = {}
    num: Vector = {}
    if indicator == "DM2_HBA1C_MEASURED":
        num = hba1c
    elif indicator == "DM2_HBA1C_AT_TARGET":
        if s[1] in ("70-79", "80+"):
            excl = den  # everyone is 70 or older: excluded, numerator 0
        else:
            excl = _minus(den, hba1c)
            num = {_u("HBA1C", s, "<=53"): 1}
    elif indicator == "DM2_HBA1C_BANDS":
        excl = _minus(den, hba1c)
        if quantity.startswith("num:"):
            return {_u("HBA1C", s, quantity.removeprefix("num:")): 1}
    elif indicator == "DM2_SBP_40_59":
        # A test definition (test_protection.py): SBP below 140 for ages 40-59 only.
        if s[1] == "40-59":
            excl = _minus(den, {_u("SBP", s, "below"): 1, _u("SBP", s, "above"): 1})
            num = {_u("SBP", s, "below"): 1}
        else:
            excl = den
    elif indicator == "DM2_LDL_FROM_40":
        # A test definition (test_protection.py): LDL below 2.6 from age 40.
        if s[1] == "18-39":
            excl = den
        else:
            excl = _minus(den, {_u("LDL", s, "below"): 1, _u("LDL", s, "above"): 1})
            num = {_u("LDL", s, "below"): 1}
    elif indicator in ("DM2_SBP_BELOW_140", "DM2_LDL_BELOW_2_6"):
        code = "SBP" if "SBP" in indicator else "LDL"
        excl = _minus(den, {_u(code, s, "below"): 1, _u(code, s, "above"): 1})
        num = {_u(code, s, "below"): 1}
    elif indicator in MEASURED_ONLY:
        num = _measured(MEASURED_ONLY[indicator], s)
    elif indicator == "COPD_CCQ_MRC":
        num = {_u("CCQ_MRC", s, "both"): 1}
    elif indicator == "COPD_EXACERBATIONS":
        num = {_u("EXACERBATION", s, "events"): 1}
    elif indicator == "CVRM_ROUTINE_CHECK":
        num = _total(_u("CVRM", s, str(c)) for c in CVRM_COMBOS if sum(c) >= 2)
    elif indicator == "PROM_PAM_LEVELS":
        levels = _total(_u("PAM", s, level) for level in "1234")
        excl = _minus(den, levels)
        if quantity.startswith("num:"):
            return {_u("PAM", s, quantity.removeprefix("num:")): 1}
    else:
        raise KeyError(indicator)
    return {"excl": excl, "num": num}[quantity]


MEASURED_ONLY = {
    "DM2_EGFR_MEASURED": "EGFR",
    "DM2_FOOT_EXAM_12M": "FOOT_EXAM",
    "DM2_FUNDUS_36M": "FUNDUS_EXAM",
    "COPD_LUNG_FUNCTION": "SPIROMETRY",
    "COPD_INHALER_TECHNIQUE": "INHALER_TECHNIQUE",
    "COPD_SMOKING_STATUS": "SMOKING_STATUS",
    "COPD_FLU_VACCINATION": "FLU_VACCINATION",
}


def inside(key: Key, s: Key) -> bool:
    return all(k in ("", v) for k, v in zip(key, s, strict=True))


def vector(indicator: str, key: Key, quantity: str, strata: Iterable[Key]) -> Vector:
    """The quantity of a cell (any key, margins included): the sum over its fine strata."""
    out: Vector = {}
    for s in strata:
        if inside(key, s):
            for k, v in fine(indicator, s, quantity).items():
                out[k] = out.get(k, 0) + v
    return {k: v for k, v in out.items() if v}


class RowSpace:
    """The span of the published vectors, kept in reduced row echelon form over the
    rationals (fractions.Fraction)."""

    def __init__(self) -> None:
        self.columns: dict[str, int] = {}
        self.pivots: dict[int, dict[int, Fraction]] = {}

    def _row(self, v: Mapping[str, int]) -> dict[int, Fraction]:
        out = {}
        for name, c in v.items():
            col = self.columns.setdefault(name, len(self.columns))
            out[col] = Fraction(c)
        return out

    def _reduce(self, row: dict[int, Fraction]) -> dict[int, Fraction]:
        for col in [c for c in row if c in self.pivots]:
            factor = row.get(col)
            if not factor:
                continue
            for c, v in self.pivots[col].items():
                nv = row.get(c, Fraction(0)) - factor * v
                if nv:
                    row[c] = nv
                else:
                    row.pop(c, None)
        return row

    def add(self, v: Mapping[str, int]) -> None:
        row = self._reduce(self._row(v))
        if not row:
            return
        col = min(row)
        pivot = row[col]
        row = {c: x / pivot for c, x in row.items()}
        for other in self.pivots.values():
            factor = other.get(col)
            if factor:
                for c, x in row.items():
                    nv = other.get(c, Fraction(0)) - factor * x
                    if nv:
                        other[c] = nv
                    else:
                        other.pop(c, None)
        self.pivots[col] = row

    def determines(self, v: Mapping[str, int]) -> bool:
        """Whether the value of ``v`` follows from the published vectors."""
        return not self._reduce(self._row(v))

"""The eligibility rule language: declarative predicates on a patient profile, composed
with all / any / not, validated when saved and evaluated with an explanation.

A rule is plain data (JSON-compatible), stored as it is:

- ``{"all": [rule, ...]}``: every sub-rule holds (at least one sub-rule);
- ``{"any": [rule, ...]}``: at least one sub-rule holds;
- ``{"not": rule}``: the sub-rule does not hold;
- ``{"field": F, "op": OP, "number": N}`` for the numeric fields (age, bmi, pam-level)
  with OP one of eq, ge, gt, le, lt;
- ``{"field": F, "op": OP, "values": [...]}`` for the set fields with OP one of any-of,
  all-of, none-of (conditions, risk-factors, language) or any-of, none-of (the scalar
  fields postcode, municipality, referrer-role). A postcode value is ``NNNN`` or a range
  ``NNNN-NNNN``.

Evaluation is two-valued: a predicate on an unknown profile value is not satisfied (and
says so), so ``not`` over an unknown value holds. Every predicate is evaluated (no
short-circuit), so the explanation lists the outcome of each one. An empty rule admits
everyone.

The GLI rule of the reference ("BMI >= 30, or BMI >= 25 with a risk factor, and a GP or
specialist referral", adults only) is :data:`GLI_RULE`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from referral.errors import Violations

NUMERIC_FIELDS = {"age": (0.0, 130.0), "bmi": (5.0, 100.0), "pam-level": (1.0, 4.0)}
LIST_FIELDS = frozenset({"conditions", "risk-factors", "language"})
SCALAR_FIELDS = frozenset({"postcode", "municipality", "referrer-role"})
FIELDS = frozenset(NUMERIC_FIELDS) | LIST_FIELDS | SCALAR_FIELDS
NUMERIC_OPS = {"eq": "=", "ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
LIST_OPS = frozenset({"any-of", "all-of", "none-of"})
SCALAR_OPS = frozenset({"any-of", "none-of"})
REFERRER_ROLES = frozenset({"gp", "practice-nurse", "specialist"})
MAX_DEPTH = 8
MAX_NODES = 200
MAX_VALUES = 200

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,31}$")
POSTCODE = re.compile(r"^[1-9][0-9]{3}$")
POSTCODE_RANGE = re.compile(r"^([1-9][0-9]{3})-([1-9][0-9]{3})$")
MUNICIPALITY = re.compile(r"^GM[0-9]{4}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}$")

Rule = dict[str, Any]

GLI_RISK_FACTORS = ["cardiovascular", "dm2-risk", "sleep-apnoea", "osteoarthritis"]
GLI_RULE: Rule = {
    "all": [
        {"field": "age", "op": "ge", "number": 18.0},
        {
            "any": [
                {"field": "bmi", "op": "ge", "number": 30.0},
                {
                    "all": [
                        {"field": "bmi", "op": "ge", "number": 25.0},
                        {"field": "risk-factors", "op": "any-of", "values": GLI_RISK_FACTORS},
                    ]
                },
            ]
        },
        {"field": "referrer-role", "op": "any-of", "values": ["gp", "specialist"]},
    ]
}


@dataclass(frozen=True)
class Profile:
    """What eligibility looks at. Carries no identifying data."""

    conditions: tuple[str, ...] = ()
    age: int | None = None
    bmi: float | None = None
    risk_factors: tuple[str, ...] = ()
    pam_level: int | None = None
    postcode: str = ""
    municipality: str = ""
    languages: tuple[str, ...] = ()
    referrer_role: str = ""

    @cached_property
    def _values(self) -> dict[str, Any]:
        return {
            "conditions": self.conditions,
            "age": self.age,
            "bmi": self.bmi,
            "risk-factors": self.risk_factors,
            "pam-level": self.pam_level,
            "postcode": self.postcode or None,
            "municipality": self.municipality or None,
            "language": self.languages,
            "referrer-role": self.referrer_role or None,
        }

    def value(self, name: str) -> Any:
        return self._values[name]

    def as_dict(self) -> dict[str, Any]:
        return {
            "conditions": list(self.conditions),
            "age": self.age,
            "bmi": self.bmi,
            "risk_factors": list(self.risk_factors),
            "pam_level": self.pam_level,
            "postcode": self.postcode,
            "municipality": self.municipality,
            "languages": list(self.languages),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], referrer_role: str = "") -> Profile:
        return cls(
            conditions=tuple(data.get("conditions") or ()),
            age=data.get("age"),
            bmi=data.get("bmi"),
            risk_factors=tuple(data.get("risk_factors") or ()),
            pam_level=data.get("pam_level"),
            postcode=data.get("postcode") or "",
            municipality=data.get("municipality") or "",
            languages=tuple(data.get("languages") or ()),
            referrer_role=referrer_role,
        )


@dataclass(frozen=True)
class Outcome:
    path: str
    predicate: Rule
    satisfied: bool
    explanation: str


@dataclass(frozen=True)
class Result:
    eligible: bool
    outcomes: tuple[Outcome, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "eligible": self.eligible,
            "outcomes": [
                {
                    "path": o.path,
                    "predicate": o.predicate,
                    "satisfied": o.satisfied,
                    "explanation": o.explanation,
                }
                for o in self.outcomes
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        return cls(
            eligible=bool(data.get("eligible")),
            outcomes=tuple(
                Outcome(o["path"], o["predicate"], o["satisfied"], o["explanation"])
                for o in data.get("outcomes", [])
            ),
        )


# ------------------------------------------------------------------ validation


def validate(rule: Any, path: str = "eligibility") -> None:
    """Raises INVALID_ARGUMENT naming the path of every malformed part of ``rule``."""
    v = Violations()
    if rule:
        counter = [0]
        _check(rule, path, 1, counter, v)
        if counter[0] > MAX_NODES:
            v.add(path, f"at most {MAX_NODES} rule nodes", "RULE_TOO_LARGE")
    v.raise_if_any()


def _check(rule: Any, path: str, depth: int, counter: list[int], v: Violations) -> None:
    counter[0] += 1
    if depth > MAX_DEPTH:
        v.add(path, f"rules nest at most {MAX_DEPTH} deep", "RULE_TOO_DEEP")
        return
    if not isinstance(rule, Mapping):
        v.add(path, "must be a rule", "RULE_MALFORMED")
        return
    keys = set(rule)
    if keys in ({"all"}, {"any"}):
        (kind,) = keys
        subs = rule[kind]
        if not isinstance(subs, list) or not subs:
            v.add(f"{path}.{kind}", "needs at least one rule", "RULE_EMPTY_GROUP")
            return
        for i, sub in enumerate(subs):
            _check(sub, f"{path}.{kind}[{i}]", depth + 1, counter, v)
        return
    if keys == {"not"}:
        if not rule["not"]:
            v.add(f"{path}.not", "needs a rule", "RULE_EMPTY_GROUP")
            return
        _check(rule["not"], f"{path}.not", depth + 1, counter, v)
        return
    if "field" in keys or "op" in keys:
        _check_predicate(rule, f"{path}.predicate", v)
        return
    v.add(path, "must be one of all, any, not or a predicate", "RULE_MALFORMED")


def _check_predicate(rule: Mapping[str, Any], path: str, v: Violations) -> None:  # noqa: PLR0912
    name = rule.get("field")
    op = rule.get("op")
    extra = set(rule) - {"field", "op", "number", "values"}
    if extra:
        v.add(path, "unknown keys: " + ", ".join(sorted(map(str, extra))), "RULE_MALFORMED")
    if name not in FIELDS:
        v.add(f"{path}.field", "unknown profile field", "RULE_UNKNOWN_FIELD")
        return
    if name in NUMERIC_FIELDS:
        if op not in NUMERIC_OPS:
            v.add(f"{path}.operator", "not a numeric operator", "RULE_OPERATOR_MISMATCH")
        number = rule.get("number")
        low, high = NUMERIC_FIELDS[name]
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or not math.isfinite(number)
        ):
            v.add(f"{path}.number", "a number is required", "RULE_NUMBER_REQUIRED")
        elif not low <= number <= high:
            v.add(
                f"{path}.number",
                f"must be between {low:g} and {high:g}",
                "RULE_NUMBER_OUT_OF_RANGE",
            )
        if rule.get("values"):
            v.add(f"{path}.values", "a numeric predicate takes no values", "RULE_OPERATOR_MISMATCH")
        return
    allowed = LIST_OPS if name in LIST_FIELDS else SCALAR_OPS
    if op not in allowed:
        v.add(f"{path}.operator", "not a set operator for this field", "RULE_OPERATOR_MISMATCH")
    if rule.get("number") is not None:
        v.add(f"{path}.number", "a set predicate takes no number", "RULE_OPERATOR_MISMATCH")
    values = rule.get("values")
    if not isinstance(values, list) or not values:
        v.add(f"{path}.values", "at least one value is required", "RULE_VALUES_REQUIRED")
        return
    if len(values) > MAX_VALUES:
        v.add(f"{path}.values", f"at most {MAX_VALUES} values", "RULE_TOO_LARGE")
    for i, value in enumerate(values):
        if not isinstance(value, str) or not _valid_value(str(name), value):
            v.add(f"{path}.values[{i}]", f"not a valid {name} value", "RULE_INVALID_VALUE")


def _valid_value(name: str, value: str) -> bool:
    if name == "postcode":
        if POSTCODE.fullmatch(value):
            return True
        m = POSTCODE_RANGE.fullmatch(value)
        return bool(m) and int(m.group(1)) <= int(m.group(2))  # type: ignore[union-attr]
    if name == "municipality":
        return bool(MUNICIPALITY.fullmatch(value))
    if name == "language":
        return bool(LANGUAGE.fullmatch(value))
    if name == "referrer-role":
        return value in REFERRER_ROLES
    return bool(CODE.fullmatch(value))


# ------------------------------------------------------------------ evaluation


def evaluate(rule: Rule | None, profile: Profile) -> Result:
    """Whether ``profile`` satisfies ``rule``, with the outcome of every predicate."""
    if not rule:
        return Result(True, ())
    outcomes: list[Outcome] = []
    eligible = _eval(rule, profile, "eligibility", outcomes)
    return Result(eligible, tuple(outcomes))


def _eval(rule: Rule, profile: Profile, path: str, out: list[Outcome]) -> bool:
    if "all" in rule:
        results = [_eval(r, profile, f"{path}.all[{i}]", out) for i, r in enumerate(rule["all"])]
        return all(results)
    if "any" in rule:
        results = [_eval(r, profile, f"{path}.any[{i}]", out) for i, r in enumerate(rule["any"])]
        return any(results)
    if "not" in rule:
        return not _eval(rule["not"], profile, f"{path}.not", out)
    satisfied, explanation = _predicate(rule, profile)
    out.append(Outcome(f"{path}.predicate", dict(rule), satisfied, explanation))
    return satisfied


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "eq": operator.eq,
    "ge": operator.ge,
    "gt": operator.gt,
    "le": operator.le,
    "lt": operator.lt,
}


def compile_rule(rule: Rule | None) -> Callable[[Profile], bool]:
    """``evaluate(rule, ·).eligible`` without the explanation, as a function built once: the
    rule's structure, operators and values are read here, not on every profile (FindOffers
    compiles each rule of a menu card once per version of it)."""
    if not rule:
        return lambda _profile: True
    if "all" in rule or "any" in rule:
        subs = [compile_rule(r) for r in rule["all" if "all" in rule else "any"]]
        if "all" in rule:
            return lambda profile: all(sub(profile) for sub in subs)
        return lambda profile: any(sub(profile) for sub in subs)
    if "not" in rule:
        inner = compile_rule(rule["not"])
        return lambda profile: not inner(profile)
    name = str(rule["field"])
    op = str(rule["op"])
    if name in NUMERIC_FIELDS:
        number = float(rule["number"])
        compare = _COMPARE[op]

        def numeric(profile: Profile) -> bool:
            value = profile.value(name)
            return value is not None and compare(float(value), number)

        return numeric
    wanted = [str(w) for w in rule["values"]]
    count = len(rule["values"])

    def matched(profile: Profile) -> int | None:
        value = profile.value(name)
        if value is None or (name == "language" and not value):
            return None
        have = list(value) if isinstance(value, tuple) else [value]
        return sum(1 for w in wanted if any(_matches(name, h, w) for h in have))

    if op == "any-of":
        return lambda profile: bool(matched(profile))
    if op == "all-of":
        return lambda profile: (hits := matched(profile)) is not None and hits == count
    return lambda profile: (hits := matched(profile)) is not None and hits == 0


def _test(rule: Rule, profile: Profile) -> tuple[bool, list[str] | None]:
    """Whether a predicate holds; for set predicates also the wanted values that matched
    (``None`` when the profile value is unknown or the predicate is numeric)."""
    name = str(rule["field"])
    value = profile.value(name)
    if value is None or (name == "language" and not value):
        return False, None
    op = str(rule["op"])
    if name in NUMERIC_FIELDS:
        number = float(rule["number"])
        actual = float(value)
        ok = {
            "eq": actual == number,
            "ge": actual >= number,
            "gt": actual > number,
            "le": actual <= number,
            "lt": actual < number,
        }[op]
        return ok, None
    have = list(value) if isinstance(value, tuple) else [value]
    hits = [str(w) for w in rule["values"] if any(_matches(name, h, str(w)) for h in have)]
    if op == "any-of":
        return bool(hits), hits
    if op == "all-of":
        return len(hits) == len(rule["values"]), hits
    return not hits, hits


def _predicate(rule: Rule, profile: Profile) -> tuple[bool, str]:
    name = str(rule["field"])
    op = str(rule["op"])
    ok, hits = _test(rule, profile)
    value = profile.value(name)
    if value is None or (name == "language" and not value):
        return False, f"{name} unknown"
    if name in NUMERIC_FIELDS:
        number = float(rule["number"])
        return ok, f"{name} {float(value):g} {NUMERIC_OPS[op]} {number:g}: {'yes' if ok else 'no'}"
    wanted = [str(x) for x in rule["values"]]
    shown = ", ".join(hits) if hits else "none"
    return ok, f"{name} {op} [{', '.join(wanted)}]: matched {shown}: {'yes' if ok else 'no'}"


def _matches(name: str, have: str, wanted: str) -> bool:
    if name == "postcode":
        return postcode_in(have, wanted)
    if name in ("conditions", "risk-factors"):
        return have.casefold() == wanted.casefold()
    return have == wanted


def postcode_in(postcode: str, spec: str) -> bool:
    """Whether a 4-digit postcode lies in ``NNNN`` or ``NNNN-NNNN``."""
    if not POSTCODE.fullmatch(postcode):
        return False
    m = POSTCODE_RANGE.fullmatch(spec)
    if m:
        return int(m.group(1)) <= int(postcode) <= int(m.group(2))
    return postcode == spec


def predicates(rule: Rule | None) -> Sequence[Rule]:
    """Every predicate of ``rule``, in evaluation order."""
    if not rule:
        return []
    if "all" in rule or "any" in rule:
        subs: list[Rule] = rule["all"] if "all" in rule else rule["any"]
        return [p for sub in subs for p in predicates(sub)]
    if "not" in rule:
        return predicates(rule["not"])
    return [rule]

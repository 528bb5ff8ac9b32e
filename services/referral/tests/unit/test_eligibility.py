"""The rule language: the GLI rule, every operator, validation with rule paths, and the
property that a saved and loaded rule gives the same answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carenet.referral.v1 import referral_pb2 as pb
from referral import eligibility
from referral.convert import rule_from_proto, rule_to_proto
from referral.eligibility import GLI_RULE, Profile, evaluate, validate
from referral.models import OfferCategory
from referral.use_cases import offers
from servicekit.errors import InvalidArgument

from ..fakes import PROVIDER, fake_deps


def gli(bmi: float | None, risks: tuple[str, ...] = (), role: str = "gp", age: int = 50) -> Any:
    return evaluate(GLI_RULE, Profile(bmi=bmi, risk_factors=risks, referrer_role=role, age=age))


def test_the_gli_rule_admits_a_bmi_of_30_on_a_gp_referral() -> None:
    result = gli(31.0)
    assert result.eligible
    by_path = {o.path: o for o in result.outcomes}
    assert by_path["eligibility.all[1].any[0].predicate"].satisfied
    assert by_path["eligibility.all[1].any[0].predicate"].explanation == "bmi 31 >= 30: yes"


def test_the_gli_rule_admits_a_bmi_of_25_with_a_risk_factor() -> None:
    assert gli(27.5, ("sleep-apnoea",)).eligible


def test_the_gli_rule_refuses_a_bmi_of_27_without_a_risk_factor_and_says_why() -> None:
    result = gli(27.0)
    assert not result.eligible
    explanations = [o.explanation for o in result.outcomes]
    assert "bmi 27 >= 30: no" in explanations
    assert "bmi 27 >= 25: yes" in explanations
    assert any(e.startswith("risk-factors any-of") and e.endswith("no") for e in explanations)


def test_the_gli_rule_needs_a_gp_or_specialist_referral() -> None:
    assert gli(35.0, role="specialist").eligible
    result = gli(35.0, role="practice-nurse")
    assert not result.eligible
    assert result.outcomes[-1].path == "eligibility.all[2].predicate"
    assert not result.outcomes[-1].satisfied


def test_the_gli_rule_is_for_adults() -> None:
    assert not gli(35.0, age=16).eligible


def test_every_predicate_has_an_outcome_even_when_the_answer_is_already_known() -> None:
    result = gli(35.0)
    assert len(result.outcomes) == len(eligibility.predicates(GLI_RULE)) == 5


def test_an_unknown_value_does_not_satisfy_a_predicate_and_says_so() -> None:
    result = evaluate({"field": "bmi", "op": "ge", "number": 30}, Profile())
    assert not result.eligible
    assert result.outcomes[0].explanation == "bmi unknown"


def test_not_inverts_its_rule() -> None:
    rule = {"not": {"field": "conditions", "op": "any-of", "values": ["T90"]}}
    assert evaluate(rule, Profile(conditions=("K86",))).eligible
    assert not evaluate(rule, Profile(conditions=("t90",))).eligible


@pytest.mark.parametrize(
    ("op", "values", "have", "expected"),
    [
        ("any-of", ["T90", "K86"], ("K86",), True),
        ("any-of", ["T90"], ("K86",), False),
        ("all-of", ["T90", "K86"], ("K86", "T90"), True),
        ("all-of", ["T90", "K86"], ("K86",), False),
        ("none-of", ["T90"], ("K86",), True),
        ("none-of", ["T90"], ("T90",), False),
    ],
)
def test_set_operators(op: str, values: list[str], have: tuple[str, ...], expected: bool) -> None:
    rule = {"field": "conditions", "op": op, "values": values}
    assert evaluate(rule, Profile(conditions=have)).eligible is expected


@pytest.mark.parametrize(
    ("op", "number", "expected"),
    [("eq", 3, True), ("ge", 3, True), ("gt", 3, False), ("le", 2, False), ("lt", 4, True)],
)
def test_numeric_operators(op: str, number: float, expected: bool) -> None:
    rule = {"field": "pam-level", "op": op, "number": number}
    assert evaluate(rule, Profile(pam_level=3)).eligible is expected


def test_postcode_ranges_and_municipalities_match_the_patients_area() -> None:
    rule = {
        "any": [
            {"field": "postcode", "op": "any-of", "values": ["5600-5658"]},
            {"field": "municipality", "op": "any-of", "values": ["GM0772"]},
        ]
    }
    assert evaluate(rule, Profile(postcode="5612")).eligible
    assert evaluate(rule, Profile(municipality="GM0772")).eligible
    assert not evaluate(rule, Profile(postcode="5700", municipality="GM0753")).eligible


def test_language_matches_any_language_the_patient_speaks() -> None:
    rule = {"field": "language", "op": "any-of", "values": ["tr"]}
    assert evaluate(rule, Profile(languages=("nl", "tr"))).eligible
    assert evaluate(rule, Profile()).outcomes[0].explanation == "language unknown"


def test_an_empty_rule_admits_everyone() -> None:
    assert evaluate({}, Profile()).eligible


def _violations(rule: Any) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        validate(rule, "offer.eligibility")
    return {v.field: v.reason for v in caught.value.violations}


@pytest.mark.parametrize(
    ("rule", "path", "reason"),
    [
        ({"all": []}, "offer.eligibility.all", "RULE_EMPTY_GROUP"),
        ({"both": []}, "offer.eligibility", "RULE_MALFORMED"),
        (
            {"all": [{"field": "weight", "op": "ge", "number": 1}]},
            "offer.eligibility.all[0].predicate.field",
            "RULE_UNKNOWN_FIELD",
        ),
        (
            {
                "any": [
                    {"field": "bmi", "op": "ge", "number": 30},
                    {"field": "bmi", "op": "any-of", "values": ["30"]},
                ]
            },
            "offer.eligibility.any[1].predicate.operator",
            "RULE_OPERATOR_MISMATCH",
        ),
        (
            {"field": "bmi", "op": "ge"},
            "offer.eligibility.predicate.number",
            "RULE_NUMBER_REQUIRED",
        ),
        (
            {"field": "bmi", "op": "ge", "number": 1000},
            "offer.eligibility.predicate.number",
            "RULE_NUMBER_OUT_OF_RANGE",
        ),
        (
            {"field": "postcode", "op": "any-of", "values": ["56AB"]},
            "offer.eligibility.predicate.values[0]",
            "RULE_INVALID_VALUE",
        ),
        (
            {"field": "postcode", "op": "any-of", "values": ["5700-5600"]},
            "offer.eligibility.predicate.values[0]",
            "RULE_INVALID_VALUE",
        ),
        (
            {"not": {"field": "conditions", "op": "any-of", "values": []}},
            "offer.eligibility.not.predicate.values",
            "RULE_VALUES_REQUIRED",
        ),
        (
            {"field": "referrer-role", "op": "all-of", "values": ["gp"]},
            "offer.eligibility.predicate.operator",
            "RULE_OPERATOR_MISMATCH",
        ),
    ],
)
def test_a_malformed_rule_is_refused_naming_the_rule_path(
    rule: Any, path: str, reason: str
) -> None:
    assert _violations(rule).get(path) == reason


def test_rules_nest_at_most_eight_deep() -> None:
    rule: dict[str, Any] = {"field": "age", "op": "ge", "number": 18}
    for _ in range(9):
        rule = {"not": rule}
    assert "RULE_TOO_DEEP" in _violations(rule).values()


def test_the_gli_rule_is_valid() -> None:
    validate(GLI_RULE)


def test_saving_an_offer_with_a_malformed_rule_names_the_rule_path() -> None:
    deps = fake_deps()
    data = offers.OfferInput(
        display_name="x",
        category=OfferCategory.GLI,
        eligibility={"all": [{"field": "bmi", "op": "ge", "number": 30}, {"any": []}]},
    )
    with pytest.raises(InvalidArgument) as caught:
        offers.create_offer(deps, PROVIDER, data)
    assert [v.field for v in caught.value.violations] == ["offer.eligibility.all[1].any"]


# ------------------------------------------------------------------ property-based

CODES = ["T90", "K86", "T82", "P76", "R95"]
RISKS = ["cardiovascular", "dm2-risk", "sleep-apnoea", "osteoarthritis", "smoking"]
LANGS = ["nl", "en", "tr", "ar"]
GMS = ["GM0772", "GM0753", "GM0794"]


def _numbers(field: str) -> st.SearchStrategy[dict[str, Any]]:
    low, high = eligibility.NUMERIC_FIELDS[field]
    return st.builds(
        lambda op, n: {"field": field, "op": op, "number": n},
        st.sampled_from(sorted(eligibility.NUMERIC_OPS)),
        st.floats(min_value=low, max_value=high, allow_nan=False).map(lambda x: round(x, 1)),
    )


def _sets(field: str, pool: list[str], ops: frozenset[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda op, values: {"field": field, "op": op, "values": values},
        st.sampled_from(sorted(ops)),
        st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True),
    )


PREDICATES = st.one_of(
    _numbers("age"),
    _numbers("bmi"),
    _numbers("pam-level"),
    _sets("conditions", CODES, eligibility.LIST_OPS),
    _sets("risk-factors", RISKS, eligibility.LIST_OPS),
    _sets("language", LANGS, eligibility.LIST_OPS),
    _sets("municipality", GMS, eligibility.SCALAR_OPS),
    _sets("postcode", ["5612", "5600-5658", "5700-5799"], eligibility.SCALAR_OPS),
    _sets("referrer-role", ["gp", "specialist", "practice-nurse"], eligibility.SCALAR_OPS),
)
RULES = st.recursive(
    PREDICATES,
    lambda children: st.one_of(
        st.builds(lambda rs: {"all": rs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda rs: {"any": rs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda r: {"not": r}, children),
    ),
    max_leaves=12,
)
PROFILES = st.builds(
    Profile,
    conditions=st.lists(st.sampled_from(CODES), max_size=3, unique=True).map(tuple),
    age=st.none() | st.integers(0, 100),
    bmi=st.none() | st.floats(15, 45, allow_nan=False).map(lambda x: round(x, 1)),
    risk_factors=st.lists(st.sampled_from(RISKS), max_size=3, unique=True).map(tuple),
    pam_level=st.none() | st.integers(1, 4),
    postcode=st.sampled_from(["", "5612", "5701", "1011"]),
    municipality=st.sampled_from(["", *GMS]),
    languages=st.lists(st.sampled_from(LANGS), max_size=2, unique=True).map(tuple),
    referrer_role=st.sampled_from(["", "gp", "specialist", "practice-nurse"]),
)


def _depth(rule: dict[str, Any]) -> int:
    if "all" in rule or "any" in rule:
        return 1 + max(_depth(r) for r in rule.get("all", rule.get("any", [])))
    if "not" in rule:
        return 1 + _depth(rule["not"])
    return 1


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(rule=RULES, profile=PROFILES)
def test_a_generated_rule_gives_the_same_answer_after_the_wire_and_the_database(
    rule: dict[str, Any], profile: Profile
) -> None:
    if _depth(rule) > eligibility.MAX_DEPTH:
        return
    validate(rule)
    before = evaluate(rule, profile)
    wire = pb.EligibilityRule.FromString(rule_to_proto(rule).SerializeToString())
    loaded = json.loads(json.dumps(rule_from_proto(wire)))
    validate(loaded)
    after = evaluate(loaded, profile)
    assert after == before


@settings(max_examples=40, deadline=None, database=None)
@given(rule=RULES, profiles=st.lists(PROFILES, min_size=1, max_size=5))
def test_a_generated_rule_saved_on_an_offer_and_loaded_again_gives_the_same_answers(
    rule: dict[str, Any], profiles: list[Profile]
) -> None:
    if _depth(rule) > eligibility.MAX_DEPTH:
        return
    deps = fake_deps()
    data = offers.OfferInput(display_name="generated", category=OfferCategory.GLI, eligibility=rule)
    offer = offers.create_offer(deps, PROVIDER, data)
    stored = offers.get_offer(deps, PROVIDER, offer.id).eligibility
    for profile in profiles:
        assert evaluate(stored, profile) == evaluate(rule, profile)


@settings(max_examples=300, deadline=None, database=None)
@given(rule=RULES, profile=PROFILES)
def test_the_fast_check_used_for_ranking_agrees_with_the_explained_evaluation(
    rule: dict[str, Any], profile: Profile
) -> None:
    assert eligibility.compile_rule(rule)(profile) == evaluate(rule, profile).eligible

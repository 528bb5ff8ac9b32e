"""FindOffers on PostgreSQL (area and category filtered in SQL, rules compiled once per menu
version, offers ranked by group, only the page explained) gives the same ranked offers,
scores, reasons and explanations as the algorithm it replaced, kept here as the oracle, on
generated menu cards and profiles, page by page."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from referral import eligibility
from referral.deps import Deps
from referral.models import CapacityStatus, Funding, Offer, OfferCategory
from referral.ranking import in_area, score
from referral.unit_of_work import units_of_work
from referral.use_cases import matching
from servicekit.auth import Principal
from servicekit.db import make_engine, make_session_factory
from servicekit.migrations import upgrade
from servicekit.paging import PageRequest
from testkit.database import fresh_database
from testkit.fakes import FakeIdentity

from ..fakes import NOW, Clock

MENUS = 4
OFFERS_PER_MENU = 150
QUERIES_PER_MENU = 60
MUNICIPALITIES = ["GM0772", "GM0753", "GM0861", "GM0870", "GM1771"]
CONDITIONS = ["T90", "K86", "t90", "P76", "L03", "K74"]
RISKS = ["cardiovascular", "dm2-risk", "sleep-apnoea", "osteoarthritis", "smoking"]
LANGUAGES = ["nl", "en", "tr", "ar", "pl"]
NAMES = ["Beweegfit", "Wandelgroep", "Samen gezond", "Leefstijl", "Buddy"]  # ties on purpose


def _rule(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    kind = rng.random()
    if depth < 2 and kind < 0.25:
        return {rng.choice(["all", "any"]): [_rule(rng, depth + 1) for _ in range(2)]}
    if depth < 2 and kind < 0.32:
        return {"not": _rule(rng, depth + 1)}
    field = rng.choice(
        [
            "age",
            "bmi",
            "pam-level",
            "conditions",
            "risk-factors",
            "language",
            "postcode",
            "municipality",
            "referrer-role",
        ]
    )
    if field in eligibility.NUMERIC_FIELDS:
        low, high = eligibility.NUMERIC_FIELDS[field]
        return {
            "field": field,
            "op": rng.choice(["eq", "ge", "gt", "le", "lt"]),
            "number": float(rng.randint(int(low), int(min(high, 60)))),
        }
    values = {
        "conditions": CONDITIONS,
        "risk-factors": RISKS,
        "language": LANGUAGES,
        "postcode": ["5612", "5600-5620", "5500-5510", "5650"],
        "municipality": MUNICIPALITIES,
        "referrer-role": ["gp", "practice-nurse", "specialist"],
    }[field]
    ops = ["any-of", "none-of"] + (["all-of"] if field in eligibility.LIST_FIELDS else [])
    return {"field": field, "op": rng.choice(ops), "values": rng.sample(values, rng.randint(1, 2))}


def _area(rng: random.Random) -> dict[str, Any]:
    kind = rng.random()
    if kind < 0.2:
        return {}
    area: dict[str, Any] = {}
    if kind < 0.7:
        area["municipality_codes"] = rng.sample(MUNICIPALITIES, rng.randint(1, 2))
    if kind > 0.5:
        first = rng.randint(5500, 5650)
        area["postcode_ranges"] = [{"first": str(first), "last": str(first + rng.randint(0, 30))}]
    return area


def _offers(rng: random.Random, care_group: str) -> Iterator[Offer]:
    rules = [_rule(rng) for _ in range(12)] + [eligibility.GLI_RULE, {}]
    for i in range(OFFERS_PER_MENU):
        level = rng.choice([None, "well-described", "well-founded", "effective-first-evidence"])
        until = rng.choice([None, NOW - dt.timedelta(days=3), NOW + dt.timedelta(days=30)])
        places = rng.choice([0, 0, 2])
        yield Offer(
            id=f"{care_group}-{i:04d}",
            care_group_id=care_group,
            owner_org_id="gli-beweegfit",
            display_name=f"{rng.choice(NAMES)} {rng.randint(1, 3)}",
            description="",
            category=rng.choice(list(OfferCategory)).value,
            state=rng.choice(["listed"] * 8 + ["draft", "retired"]),
            target_conditions=rng.sample(CONDITIONS, rng.randint(0, 3)),
            service_area=_area(rng),
            schedules=[],
            languages=rng.sample(LANGUAGES, rng.randint(0, 2)),
            application_process="",
            contact={},
            cost_options=[
                {"funding": rng.choice(list(Funding)).value} for _ in range(rng.randint(0, 2))
            ],
            recognition_level=level,
            recognition_valid_until=until if level else rng.choice([None, until]),
            capacity_status=rng.choice(list(CapacityStatus)).value,
            total_places=places,
            places_taken=rng.randint(0, places),
            waitlist_length=0,
            capacity_notes="",
            eligibility=rng.choice(rules),
            eligibility_description="",
            version=1,
            create_time=NOW,
            update_time=NOW,
        )


def _profile(rng: random.Random) -> eligibility.Profile:
    municipality = rng.choice([*MUNICIPALITIES, ""])
    return eligibility.Profile(
        conditions=tuple(rng.sample(CONDITIONS, rng.randint(0, 3))),
        age=rng.choice([None, rng.randint(10, 95)]),
        bmi=rng.choice([None, round(rng.uniform(17, 45), 1)]),
        risk_factors=tuple(rng.sample(RISKS, rng.randint(0, 2))),
        pam_level=rng.choice([None, 1, 2, 3, 4]),
        postcode=str(rng.randint(5490, 5670)) if rng.random() < 0.8 or not municipality else "",
        municipality=municipality,
        languages=tuple(rng.sample(LANGUAGES, rng.randint(0, 2))),
    )


def oracle(  # the ranking FindOffers used before, with its explanations
    offers: list[Offer],
    profile: eligibility.Profile,
    categories: set[str],
    fundings: set[str],
    eligible_only: bool,
    now: dt.datetime,
) -> list[tuple[str, float, tuple[str, ...], dict[str, Any]]]:
    wanted = frozenset(c.casefold() for c in profile.conditions)
    postcode = int(profile.postcode) if profile.postcode else 0
    verdicts: dict[str, bool] = {}
    ranked = []
    for offer in offers:
        area = offer.service_area or {}
        codes = frozenset(area.get("municipality_codes") or [])
        ranges = [(int(r["first"]), int(r["last"])) for r in area.get("postcode_ranges") or []]
        until = offer.recognition_valid_until
        if categories and offer.category not in categories:
            continue
        if fundings and not offer.fundings & fundings:
            continue
        if until is not None and until <= now:
            continue
        if not codes and not ranges:
            how = "region"
        elif postcode and any(a <= postcode <= b for a, b in ranges):
            how = "postcode"
        elif profile.municipality and profile.municipality in codes:
            how = "municipality"
        else:
            continue
        key = json.dumps(offer.eligibility, sort_keys=True)
        if key not in verdicts:
            verdicts[key] = eligibility.evaluate(offer.eligibility, profile).eligible
        eligible = verdicts[key]
        if eligible_only and not eligible:
            continue
        free = offer.fundings & {Funding.BASIC_INSURANCE.value, Funding.MUNICIPALITY.value}
        points = (
            {"capacity": 30, "additional-assessment-required": 15, "waitlist": 10}.get(
                offer.effective_capacity().value, 0
            )
            + (10 if free else 0)
            + (100 if eligible else 0)
            + min(3, len(frozenset(c.casefold() for c in offer.target_conditions) & wanted)) * 20
        )
        if offer.recognition_level and (until is None or until > now):
            points += (
                15
                if offer.recognition_level.startswith("effective")
                else (10 if offer.recognition_level == "well-founded" else 5)
            )
        if not offer.languages or set(offer.languages) & set(profile.languages):
            points += 10
        points += 5 if how == "postcode" else 0
        ranked.append((-points, offer.display_name, offer.id, offer))
    ranked.sort(key=lambda r: (r[0], r[1], r[2]))
    out = []
    for _p, _n, _i, offer in ranked:
        result = eligibility.evaluate(offer.eligibility, profile)
        total, reasons = score(offer, profile, result.eligible, in_area(offer, profile)[1], now)
        out.append((offer.id, total, tuple(reasons), result.as_dict()))
    return out


@pytest.fixture(scope="module")
def menus() -> Iterator[tuple[Engine, dict[str, list[Offer]]]]:
    rng = random.Random(20261207)
    with fresh_database("referral_find") as url:
        upgrade("referral.migrations", url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        generated: dict[str, list[Offer]] = {}
        with sessions() as session:
            for m in range(MENUS):
                care_group = f"cg-gen-{m}"
                generated[care_group] = list(_offers(rng, care_group))
                session.add_all(generated[care_group])
            session.commit()
        yield (
            engine,
            {cg: [o for o in offers if o.state == "listed"] for cg, offers in generated.items()},
        )
        engine.dispose()


def test_find_offers_ranks_and_explains_as_the_previous_algorithm(
    menus: tuple[Engine, dict[str, list[Offer]]],
) -> None:
    engine, listed = menus
    deps = Deps(uow=units_of_work(engine), identity=FakeIdentity(), clock=Clock())
    rng = random.Random(7)
    compared = pages = 0
    for care_group, offers in listed.items():
        for _ in range(QUERIES_PER_MENU):
            role = rng.choice(["gp", "practice-nurse", "specialist"])
            caller = Principal(
                subject="dr.gen",
                client_id="carenet-kis",
                organisation="organisations/gp-x",
                care_group=f"organisations/{care_group}",
                roles=frozenset({role}),
            )
            profile = _profile(rng)
            categories = set(rng.sample([c.value for c in OfferCategory], rng.choice([0, 0, 1, 3])))
            fundings = set(rng.sample([f.value for f in Funding], rng.choice([0, 0, 0, 1, 2])))
            eligible_only = rng.random() < 0.25
            size = rng.choice([1, 7, 20, 100])
            expected = oracle(
                offers, matching.with_role(profile, role), categories, fundings, eligible_only, NOW
            )
            got: list[tuple[str, float, tuple[str, ...], dict[str, Any]]] = []
            position = None
            while True:
                found = matching.find_offers(
                    deps,
                    caller,
                    profile,
                    categories=[OfferCategory(c) for c in sorted(categories)],
                    fundings=[Funding(f) for f in sorted(fundings)],
                    eligible_only=eligible_only,
                    page=PageRequest(size, position),
                )
                pages += 1
                assert len(found.items) <= size
                got += [
                    (m.offer.id, m.score, m.reasons, m.eligibility.as_dict()) for m in found.items
                ]
                position = found.next
                if position is None:
                    break
            assert got == expected, (care_group, profile, categories, fundings, eligible_only)
            compared += len(expected)
    assert compared > 2000 and pages > QUERIES_PER_MENU * MENUS  # the test did compare

"""FindOffers over 2,000 listed offers (area filter, eligibility of every offer, deterministic
scoring, the first page of 20 with explanations) against a bare gRPC handler doing one SELECT
by primary key, in the same run. Reports p50/p99 and throughput.

Every call asks for another patient: the profiles are drawn once from a generated population
(ages, BMI, conditions, risk factors, postcodes and municipalities of the region, PAM levels,
languages), so no answer is asked for twice.

    .venv/bin/python bench/referral_find_offers.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import random

import grpc
from common import platform
from harness import BaselineClient, baseline_server, compare, report

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from referral import eligibility
from referral.models import Offer
from servicekit.db import make_engine, make_session_factory

LISTED = 2000
POPULATION = 50_000
# Where the patients live: mostly Eindhoven (where the bench's offers are given), some in the
# neighbouring municipalities of the care group (postcode range, municipality code).
PLACES = [((5611, 5658), "GM0772")] * 9 + [
    ((5500, 5509), "GM0861"),
    ((5680, 5685), "GM0753"),
    ((5660, 5667), "GM1771"),
]
CONDITIONS = ["T90", "K86", "K74", "K77", "R96", "P76", "L03", "T82"]
RISK_FACTORS = ["cardiovascular", "dm2-risk", "sleep-apnoea", "osteoarthritis", "smoking"]


def population(size: int, seed: int = 12) -> list[pb.PatientProfile]:
    """``size`` different patients' profiles, generated."""
    rng = random.Random(seed)
    out: list[pb.PatientProfile] = []
    seen: set[bytes] = set()
    while len(out) < size:
        (first, last), municipality = rng.choice(PLACES)
        profile = pb.PatientProfile(
            age=rng.randint(18, 90),
            bmi=round(rng.uniform(19.0, 45.0), 1),
            postcode=str(rng.randint(first, last)),
            municipality_code=municipality,
            conditions=rng.sample(CONDITIONS, rng.choice([0, 1, 1, 2, 3])),
            risk_factors=rng.sample(RISK_FACTORS, rng.choice([0, 1, 2])),
            languages=["nl"]
            + (rng.sample(["en", "tr", "ar", "pl"], 1) if rng.random() < 0.2 else []),
        )
        if rng.random() < 0.8:
            profile.pam_level = rng.randint(1, 4)
        key = profile.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            out.append(profile)
    return out


CATEGORIES = [
    "gli",
    "physical-activity",
    "nutrition",
    "smoking-cessation",
    "stress-and-sleep",
    "social-and-welfare",
    "patient-education",
    "peer-support",
]


def bulk_offers(database_url: str, count: int, prefix: str = "bench") -> list[str]:
    """``count`` listed offers of cg-zuidoost owned by gli-beweegfit, in Eindhoven, with
    rules of a few predicates each; returns their names."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    now = dt.datetime.now(dt.UTC)
    rules = [
        eligibility.GLI_RULE,
        {"field": "age", "op": "ge", "number": 18.0},
        {
            "all": [
                {"field": "conditions", "op": "any-of", "values": ["T90", "K86"]},
                {"not": {"field": "pam-level", "op": "ge", "number": 4.0}},
            ]
        },
        {},
    ]
    names: list[str] = []
    with sessions() as session:
        for i in range(count):
            offer_id = f"{prefix}-{i:05d}"
            session.add(
                Offer(
                    id=offer_id,
                    care_group_id="cg-zuidoost",
                    owner_org_id="gli-beweegfit",
                    display_name=f"Bench offer {i:05d}",
                    description="",
                    category=CATEGORIES[i % 8],
                    state="listed",
                    target_conditions=["T90"] if i % 3 == 0 else ["K86"],
                    service_area={
                        "municipality_codes": ["GM0772"],
                        "postcode_ranges": [{"first": "5600", "last": "5658"}],
                    },
                    schedules=[],
                    languages=["nl"] if i % 2 else [],
                    application_process="",
                    contact={},
                    cost_options=[{"funding": "basic-insurance" if i % 2 else "own-payment"}],
                    recognition_level=None,
                    recognition_valid_until=None,
                    capacity_status="capacity",
                    total_places=0,
                    places_taken=0,
                    waitlist_length=0,
                    capacity_notes="",
                    eligibility=rules[i % len(rules)],
                    eligibility_description="",
                    version=1,
                    create_time=now,
                    update_time=now,
                )
            )
            names.append(f"offers/{offer_id}")
        session.commit()
    engine.dispose()
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short rounds, for trying it out")
    args = parser.parse_args()
    rounds, seconds = (3, 1.0) if args.quick else (5, 4.0)
    services = {"identity": {}, "referral": {"REFERRAL_OIDC_CLIENT_SECRET": "svc-referral-secret"}}
    with platform(services) as p, baseline_server(p.database_url) as base_target:
        # The demo menu card has 5 listed offers; together about 2,000.
        bulk_offers(p.processes["referral"].env["REFERRAL_DATABASE_URL"], LISTED - 5)
        token = p.idp.password_token("carenet-kis", "dr.jansen")
        metadata = (("authorization", f"Bearer {token}"),)
        requests = [rpc.FindOffersRequest(profile=p, page_size=20) for p in population(POPULATION)]
        drawn = itertools.count()
        with (
            grpc.insecure_channel(p.target("referral")) as ch,
            grpc.insecure_channel(base_target) as bch,
        ):
            stub = rpc_grpc.ReferralServiceStub(ch)
            base = BaselineClient(bch)
            reply = stub.FindOffers(requests[-1], metadata=metadata, timeout=30)
            assert len(reply.matches) == 20 and reply.next_page_token, reply

            def candidate(_i: int) -> object:
                request = requests[next(drawn) % POPULATION]
                return stub.FindOffers(request, metadata=metadata, timeout=30)

            def baseline(i: int) -> object:
                return base.select(str(i % 10_000 + 1).encode(), timeout=5)

            results = [
                compare(
                    f"FindOffers over {LISTED} listed offers vs SELECT by key",
                    baseline,
                    candidate,
                    rounds=rounds,
                    seconds=seconds,
                    concurrency=c,
                )
                for c in (1, 4)
            ]
    print(f"distinct profiles asked: {min(next(drawn), POPULATION)} of {POPULATION}")
    report(results, "referral_find_offers.json")


if __name__ == "__main__":
    main()

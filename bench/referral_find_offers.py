"""FindOffers over 2,000 listed offers (area filter, eligibility of every offer, deterministic
scoring, the first page of 20 with explanations) against a bare gRPC handler doing one SELECT
by primary key, in the same run. Reports p50/p99 and throughput.

    .venv/bin/python bench/referral_find_offers.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt

import grpc
from common import platform
from harness import BaselineClient, baseline_server, compare, report

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from referral import eligibility
from referral.models import Offer
from servicekit.db import make_engine, make_session_factory

PROFILE = pb.PatientProfile(
    age=58,
    bmi=31.0,
    postcode="5612",
    municipality_code="GM0772",
    conditions=["T90"],
    risk_factors=["cardiovascular"],
    pam_level=2,
    languages=["nl"],
)
LISTED = 2000

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
        request = rpc.FindOffersRequest(profile=PROFILE, page_size=20)
        with (
            grpc.insecure_channel(p.target("referral")) as ch,
            grpc.insecure_channel(base_target) as bch,
        ):
            stub = rpc_grpc.ReferralServiceStub(ch)
            base = BaselineClient(bch)
            reply = stub.FindOffers(request, metadata=metadata, timeout=30)
            assert len(reply.matches) == 20 and reply.next_page_token, reply

            def candidate(_i: int) -> object:
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
    report(results, "referral_find_offers.json")


if __name__ == "__main__":
    main()

"""The web front's server time for two pages, against a bare Flask handler making the same
gRPC calls with the same token, in the same run:

- Menukaart, first page, with 2,000 listed offers (``ListOffers``, page of 20);
- a full care-plan page (``GetCarePlan`` of the demo plan: goals, actions with a linked
  referral's state, participants, evaluations), and the ``LookupPeople`` of the people it
  names (the page shows them by name and keeps no names between requests; organisation
  names come from the front's own cache, warm after the first page).

Both apps run in this process and are called through Flask's test client, so what is measured
is server time (WSGI, sessions, CSRF token, security headers, templates and the gRPC calls),
not the network. The services run as processes on PostgreSQL with the local issuer. Rounds
alternate baseline and candidate; the ratio of p50 and of p95 is reported per round and as the
median of the rounds (goal: at most 1.5, i.e. the web layer adds at most 50 %).

    .venv/bin/python bench/web_pages.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import grpc
from careplan_get import PLAN, fill_referral_state
from common import platform
from flask import Flask
from harness import REPO
from referral_find_offers import bulk_offers

from carenet.careplan.v1 import careplan_service_pb2 as cp_rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as cp_grpc
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rf_grpc
from web.app import create_app
from web.backend import Channels
from web.config import Settings
from web.names import MAX_PEOPLE, USER_ID

LISTED = 2000


def bare_app(channels: Channels, token: str) -> Flask:
    """The same gRPC calls behind a Flask handler each, returning a minimal text answer."""
    app = Flask("bare")
    metadata = (("authorization", f"Bearer {token}"),)
    offers = rf_grpc.ReferralServiceStub(channels.referral)
    plans = cp_grpc.CarePlanServiceStub(channels.careplan)
    identity = id_grpc.IdentityServiceStub(channels.identity)

    @app.get("/menukaart")
    def menukaart() -> str:
        found = offers.ListOffers(
            rf_rpc.ListOffersRequest(state=rf.OFFER_STATE_LISTED, page_size=20),
            metadata=metadata,
            timeout=10,
        )
        return "\n".join(o.display_name for o in found.offers)

    @app.get("/zorgplan")
    def zorgplan() -> str:
        plan = plans.GetCarePlan(
            cp_rpc.GetCarePlanRequest(name=PLAN), metadata=metadata, timeout=10
        )
        named = [
            *(a.responsible_person for a in plan.actions),
            *(person for p in plan.participants for person in p.persons),
        ]
        users = [u for u in dict.fromkeys(named) if USER_ID.match(u)][:MAX_PEOPLE]
        shown = [*plan.what_matters, *(g.description for g in plan.goals)]
        if users:  # as the page: no call when the plan names nobody by user id
            people = identity.LookupPeople(
                id_rpc.LookupPeopleRequest(users=users), metadata=metadata, timeout=10
            )
            shown += [p.display_name for p in people.people]
        return "\n".join(shown)

    return app


def timings(get: Callable[[], Any], seconds: float) -> list[float]:
    out: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        response = get()
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return out


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short rounds, for trying it out")
    args = parser.parse_args()
    rounds, seconds = (3, 1.0) if args.quick else (5, 4.0)
    services = {
        "identity": {},
        "referral": {"REFERRAL_OIDC_CLIENT_SECRET": "svc-referral-secret"},
        "careplan": {
            "CAREPLAN_OIDC_CLIENT_SECRET": "svc-careplan-secret",
            "CAREPLAN_CONSUME_REFERRAL_EVENTS": "false",
        },
    }
    results: list[dict[str, Any]] = []
    with platform(services) as p, tempfile.TemporaryDirectory() as sessions:
        # The demo menu card has 5 listed offers; together about 2,000.
        bulk_offers(p.processes["referral"].env["REFERRAL_DATABASE_URL"], LISTED - 5)
        fill_referral_state(p.processes["careplan"].env["CAREPLAN_DATABASE_URL"])
        token = p.idp.password_token("carenet-kis", "dr.jansen")
        settings = Settings(
            oidc_issuer=p.idp.issuer,
            oidc_client_secret="carenet-web-secret",  # type: ignore[arg-type]  # noqa: S106
            identity_target=p.target("identity"),
            referral_target=p.target("referral"),
            careplan_target=p.target("careplan"),
            outcomes_target=p.target("identity"),  # not called by these pages
            secret_key="bench-secret-key-0123456789abcdef0123",  # type: ignore[arg-type]  # noqa: S106
            session_dir=sessions,
            secure_cookies=False,
        )
        channels = Channels.open(
            settings.identity_target,
            settings.referral_target,
            settings.careplan_target,
            settings.outcomes_target,
        )
        web = create_app(settings, channels).test_client()
        with web.session_transaction() as session:
            session["token"] = {
                "access_token": token,
                "refresh_token": "",
                "expires_at": time.time() + 3000,
                "id_token": "",
            }
            session["user"] = {
                "subject": "bench",
                "username": "dr.jansen",
                "name": "Eva Jansen",
                "roles": ["gp"],
                "organisation": "gp-de-linde",
                "care_group": "cg-zuidoost",
                "patient": "",
            }
        bare = bare_app(channels, token).test_client()
        pages = {
            "menukaart (2,000 listed offers, first page of 20)": ("/menukaart", "/menukaart"),
            "care-plan page (the full demo plan)": ("/patienten/p-0001/zorgplan", "/zorgplan"),
        }
        menu = web.get("/menukaart")
        assert menu.status_code == 200 and menu.text.count('href="/menukaart/') == 20, menu.text
        plan = web.get("/patienten/p-0001/zorgplan")
        assert plan.status_code == 200 and "Afspraken" in plan.text
        for name, (web_path, bare_path) in pages.items():
            get_web = functools.partial(web.get, web_path)
            get_bare = functools.partial(bare.get, bare_path)
            timings(get_web, 1.0)  # warm-up
            timings(get_bare, 1.0)
            per_round = []
            for _ in range(rounds):
                base = timings(get_bare, seconds)
                cand = timings(get_web, seconds)
                per_round.append(
                    {
                        "bare_p50_ms": statistics.median(base),
                        "bare_p95_ms": percentile(base, 0.95),
                        "web_p50_ms": statistics.median(cand),
                        "web_p95_ms": percentile(cand, 0.95),
                        "calls": len(base) + len(cand),
                    }
                )
            p50 = [r["web_p50_ms"] / r["bare_p50_ms"] for r in per_round]
            p95 = [r["web_p95_ms"] / r["bare_p95_ms"] for r in per_round]
            result: dict[str, Any] = {
                "name": name,
                "rounds": per_round,
                "p50_ratio": {"median": statistics.median(p50), "min": min(p50), "max": max(p50)},
                "p95_ratio": {"median": statistics.median(p95), "min": min(p95), "max": max(p95)},
                "web_p50_ms": statistics.median(r["web_p50_ms"] for r in per_round),
                "bare_p50_ms": statistics.median(r["bare_p50_ms"] for r in per_round),
                "web_p95_ms": statistics.median(r["web_p95_ms"] for r in per_round),
                "bare_p95_ms": statistics.median(r["bare_p95_ms"] for r in per_round),
            }
            results.append(result)
            print(
                f"{name}: p50 {result['web_p50_ms']:.2f} ms vs bare {result['bare_p50_ms']:.2f} ms"
                f" = {result['p50_ratio']['median']:.2f}x (min {result['p50_ratio']['min']:.2f},"
                f" max {result['p50_ratio']['max']:.2f}); p95 {result['web_p95_ms']:.2f} ms vs"
                f" {result['bare_p95_ms']:.2f} ms = {result['p95_ratio']['median']:.2f}x"
                f" (min {result['p95_ratio']['min']:.2f}, max {result['p95_ratio']['max']:.2f});"
                " goal: at most 1.50x",
                flush=True,
            )
        channels.close()
    target = REPO / "build" / "bench" / "web_pages.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as err:  # a failed call names its code, not a trace of the bench
        raise SystemExit(f"bench failed: {err}") from None

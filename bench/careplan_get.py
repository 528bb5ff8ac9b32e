"""GetCarePlan of a full plan (goals, actions, participants, a linked referral's state)
against a bare gRPC handler doing one SELECT by primary key, in the same run; then its p50
with 15,000 versus 150,000 plans in the database.

GetCarePlan verifies the token, reads the plan (one SELECT by primary key), and asks
identity's Authorize, which decides and appends one hash-chained access-log row (a write
and a commit in identity) before careplan answers. The baseline does none of that.

    .venv/bin/python bench/careplan_get.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics

import grpc
import psycopg
from common import platform
from harness import REPO, BaselineClient, baseline_server, compare, libpq, report

from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc

PLAN = "patients/p-0001/carePlan"


def fill_referral_state(url: str) -> None:
    """Lets the demo plan's GLI action follow an accepted referral, as the consumer would."""
    from careplan import demo
    from careplan.clients import ReferralEvent
    from careplan.deps import Deps
    from careplan.unit_of_work import UnitOfWork
    from careplan.use_cases import referral_links
    from servicekit.db import make_engine, make_session_factory

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    deps = Deps(uow=lambda: UnitOfWork(sessions), identity=None)  # type: ignore[arg-type]
    event = ReferralEvent(
        cursor=1,
        event_id="bench-1",
        referral=demo.DEMO_REFERRAL,
        patient_id=demo.PATIENT,
        status="in-progress",
        business_status="",
        enrolment="enrolled",
        feedback_summary="4 van 12 sessies bijgewoond",
        event_time=None,
    )
    referral_links.apply_referral_event(deps, event)
    engine.dispose()


def grow_to(url: str, plans: int) -> None:
    """Adds copies of the demo plan under other patients until the table holds ``plans``."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM care_plans").fetchone()
        have = row[0] if row else 0
        if have >= plans:
            return
        conn.execute(
            "INSERT INTO care_plans (patient_id, care_group_id, record_holder_id, status, version,"
            " document, create_time, update_time)"
            " SELECT 'p-bench-' || g, care_group_id, record_holder_id, status, version, document,"
            " create_time, update_time FROM care_plans, generate_series(%s::int, %s::int) g"
            " WHERE patient_id = 'p-0001'",
            (have, plans - 1),
        )
        conn.execute("ANALYZE care_plans")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short rounds and 10x fewer plans")
    args = parser.parse_args()
    rounds, seconds = (3, 1.0) if args.quick else (5, 4.0)
    small, large = (1_500, 15_000) if args.quick else (15_000, 150_000)
    services = {
        "identity": {},
        "careplan": {
            "CAREPLAN_OIDC_CLIENT_SECRET": "svc-careplan-secret",
            "CAREPLAN_CONSUME_REFERRAL_EVENTS": "false",
        },
    }
    with platform(services) as p, baseline_server(p.database_url) as base_target:
        careplan_url = p.processes["careplan"].env["CAREPLAN_DATABASE_URL"]
        fill_referral_state(careplan_url)
        token = p.idp.password_token("carenet-kis", "dr.jansen")
        metadata = (("authorization", f"Bearer {token}"),)
        request = rpc.GetCarePlanRequest(name=PLAN)
        with (
            grpc.insecure_channel(p.target("careplan")) as ch,
            grpc.insecure_channel(base_target) as bch,
        ):
            stub = rpc_grpc.CarePlanServiceStub(ch)
            base = BaselineClient(bch)
            plan = stub.GetCarePlan(request, metadata=metadata, timeout=5)
            assert plan.goals and plan.actions and plan.participants, plan
            assert any(a.referral_state.status for a in plan.actions), plan.actions
            size = plan.ByteSize()

            def candidate(_i: int) -> object:
                return stub.GetCarePlan(request, metadata=metadata, timeout=5)

            def baseline(i: int) -> object:
                return base.select(str(1 + i % 10_000).encode(), timeout=5)

            results = []
            p50: dict[int, float] = {}
            for plans in (small, large):
                grow_to(careplan_url, plans)
                for concurrency in (1, 8):
                    result = compare(
                        f"GetCarePlan ({plans} plans) vs SELECT by primary key",
                        baseline,
                        candidate,
                        rounds=rounds,
                        seconds=seconds,
                        concurrency=concurrency,
                    )
                    results.append(result)
                    if concurrency == 1:
                        p50[plans] = statistics.median(s.p50_ms for s in result.candidate)
    report(results, "careplan_get.json")
    growth = p50[large] / p50[small] - 1
    summary = {
        "plan_bytes": size,
        f"p50_ms_{small}": p50[small],
        f"p50_ms_{large}": p50[large],
        "p50_growth": growth,
    }
    print(
        f"GetCarePlan p50 (concurrency 1): {p50[small]:.2f} ms with {small} plans, "
        f"{p50[large]:.2f} ms with {large} plans = {growth:+.0%} (goal: no worse than +30%); "
        f"plan message {size} bytes"
    )
    target = REPO / "build" / "bench" / "careplan_get_scaling.json"
    target.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

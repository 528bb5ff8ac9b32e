"""End to end: identity, referral, careplan and the OIDC issuer as real processes.

A KIS (dr.jansen) creates a care plan with an action linked to a referral; the provider
moves the referral to completed with feedback; the action follows. Then careplan is killed
(SIGKILL) while referral events keep coming, and restarted: it resumes from its durable
cursor, so no event is lost and none is applied twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from sqlalchemy import create_engine, text

from carenet.careplan.v1 import careplan_pb2 as cp
from carenet.careplan.v1 import careplan_service_pb2 as cp_rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as cp_grpc
from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rf_grpc
from testkit.database import fresh_database
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess

pytestmark = pytest.mark.e2e

PLAN = "patients/p-0001/carePlan"
CONSUMER_AUTHOR = "careplan:referral-events"
PROFILE = rf.PatientProfile(
    conditions=["T90"],
    age=58,
    bmi=31.5,
    risk_factors=["smoking"],
    postcode="5611",
    municipality_code="GM0772",
    languages=["nl"],
)


def _cli(module: str, command: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", f"{module}.main", command],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )


@dataclass
class Platform:
    identity: ServiceProcess
    referral: ServiceProcess
    careplan: ServiceProcess
    careplan_env: dict[str, str]
    careplan_db: str

    def restart_careplan(self) -> None:
        self.careplan = ServiceProcess("careplan", self.careplan_env).start()


@pytest.fixture(scope="module")
def platform(local_idp: LocalIdp) -> Iterator[Platform]:
    with (
        fresh_database("e2e_cp_identity") as identity_db,
        fresh_database("e2e_cp_referral") as referral_db,
        fresh_database("e2e_cp_careplan") as careplan_db,
    ):
        common = {"OIDC_ISSUER": local_idp.issuer, "GRPC_HOST": "127.0.0.1", "GRPC_PORT": "0"}
        identity_env = {f"IDENTITY_{k}": v for k, v in common.items()} | {
            "IDENTITY_DATABASE_URL": identity_db,
            "IDENTITY_BSN_PEPPER": "e2e-pepper",
        }
        _cli("identity", "migrate", identity_env)
        _cli("identity", "seed-demo", identity_env)
        identity = ServiceProcess("identity", identity_env).start()
        referral_env = {f"REFERRAL_{k}": v for k, v in common.items()} | {
            "REFERRAL_DATABASE_URL": referral_db,
            "REFERRAL_IDENTITY_TARGET": identity.target,
            "REFERRAL_OIDC_CLIENT_SECRET": "svc-referral-secret",
            "REFERRAL_WATCH_POLL_SECONDS": "0.05",
        }
        _cli("referral", "migrate", referral_env)
        _cli("referral", "seed-demo", referral_env)
        referral = ServiceProcess("referral", referral_env).start()
        careplan_env = {f"CAREPLAN_{k}": v for k, v in common.items()} | {
            "CAREPLAN_DATABASE_URL": careplan_db,
            "CAREPLAN_IDENTITY_TARGET": identity.target,
            "CAREPLAN_REFERRAL_TARGET": referral.target,
            "CAREPLAN_OIDC_CLIENT_SECRET": "svc-careplan-secret",
            "CAREPLAN_CONSUMER_RETRY_SECONDS": "0.2",
        }
        _cli("careplan", "migrate", careplan_env)
        careplan = ServiceProcess("careplan", careplan_env).start()
        running = Platform(identity, referral, careplan, careplan_env, careplan_db)
        try:
            yield running
        finally:
            for process in (running.careplan, referral, identity):
                process.stop()


def _wait(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Kis:
    """What a chain information system does, as dr.jansen."""

    def __init__(self, platform: Platform, tokens: Tokens) -> None:
        self.platform = platform
        self.tokens = tokens
        self.referrals = rf_grpc.ReferralServiceStub(
            grpc.insecure_channel(platform.referral.target)
        )

    @property
    def plans(self) -> cp_grpc.CarePlanServiceStub:
        return cp_grpc.CarePlanServiceStub(grpc.insecure_channel(self.platform.careplan.target))

    def refer(self, offer: str) -> rf.Referral:
        referral: rf.Referral = self.referrals.CreateReferral(
            rf_rpc.CreateReferralRequest(
                parent="patients/p-0001",
                referral=rf.Referral(
                    offer=f"offers/{offer}", reason="DM2, overgewicht", profile=PROFILE
                ),
                request_id=f"e2e-{offer}",
            ),
            metadata=bearer(self.tokens.user("dr.jansen")),
            timeout=10,
        )
        return referral

    def plan(self) -> cp.CarePlan:
        plan: cp.CarePlan = self.plans.GetCarePlan(
            cp_rpc.GetCarePlanRequest(name=PLAN),
            metadata=bearer(self.tokens.user("dr.jansen")),
            timeout=10,
        )
        return plan

    def action(self, action_id: str) -> cp.Action:
        return next(a for a in self.plan().actions if a.id == action_id)


def _move(
    referrals: rf_grpc.ReferralServiceStub,
    token: str,
    name: str,
    status: Any,
    outcome: rf.ReferralOutcome | None = None,
) -> None:
    referrals.TransitionReferral(
        rf_rpc.TransitionReferralRequest(name=name, status=status, outcome=outcome),
        metadata=bearer(token),
        timeout=10,
    )


def _complete(
    referrals: rf_grpc.ReferralServiceStub, token: str, name: str, summary: str, pause: float = 0.0
) -> None:
    for status in (rf.REFERRAL_STATUS_ACCEPTED, rf.REFERRAL_STATUS_IN_PROGRESS):
        _move(referrals, token, name, status)
        time.sleep(pause)
    outcome = rf.ReferralOutcome(
        attendance=rf.ATTENDANCE_FULL,
        sessions_attended=12,
        sessions_planned=12,
        result_summary=summary,
    )
    _move(referrals, token, name, rf.REFERRAL_STATUS_COMPLETED, outcome)


def test_the_plan_follows_its_referrals_across_a_careplan_crash(
    platform: Platform, tokens: Tokens
) -> None:
    kis = Kis(platform, tokens)
    # 1. The KIS refers to the GLI and creates the plan with an action linked to it.
    gli = kis.refer("gli-beweegfit-cool")
    created = kis.plans.CreateCarePlan(
        cp_rpc.CreateCarePlanRequest(
            parent="patients/p-0001",
            care_plan=cp.CarePlan(
                what_matters=["Weer fietsen met mijn kleinkinderen"],
                goals=[cp.Goal(id="walk", description="Elke dag een half uur wandelen")],
                actions=[
                    cp.Action(
                        id="gli",
                        description="GLI",
                        kind=cp.ACTION_KIND_REFERRAL,
                        referral=gli.name,
                        goals=["walk"],
                    )
                ],
            ),
        ),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=10,
    )
    assert created.actions[0].referral == gli.name
    # 2. The provider accepts, starts and completes it with feedback.
    provider = tokens.user("coach.degroot")
    _complete(kis.referrals, provider, gli.name, "12 van 12 sessies; 4 kg afgevallen")
    # 3. The action shows completed, with that feedback.
    _wait(
        "the GLI action to complete",
        lambda: kis.action("gli").status == cp.ACTIVITY_STATUS_COMPLETED,
    )
    state = kis.action("gli").referral_state
    assert (state.status, state.feedback_summary) == (
        "completed",
        "12 van 12 sessies; 4 kg afgevallen",
    )

    # 4. More linked referrals; careplan is killed while their events flow, then restarted.
    targets = {
        "gli-beweegfit-dietist-groep": provider,
        "gli-beweegfit-stoppen-met-roken": provider,
        "gm-eindhoven-wandelgroep": tokens.user("coach.visser"),
    }
    linked = {offer: kis.refer(offer) for offer in targets}
    plan = kis.plan()
    for offer, referral in linked.items():
        plan.actions.add(
            id=offer.removeprefix("gli-beweegfit-").removeprefix("gm-eindhoven-"),
            description=offer,
            kind=cp.ACTION_KIND_REFERRAL,
            referral=referral.name,
        )
    kis.plans.UpdateCarePlan(
        cp_rpc.UpdateCarePlanRequest(
            care_plan=plan, update_mask=field_mask_pb2.FieldMask(paths=["actions"])
        ),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=10,
    )
    before = kis.plan().version
    movers = [
        threading.Thread(
            target=_complete, args=(kis.referrals, targets[offer], r.name, f"klaar: {offer}", 0.3)
        )
        for offer, r in linked.items()
    ]
    for t in movers:
        t.start()
    _wait("careplan to apply some of the new events", lambda: kis.plan().version >= before + 2)
    at_kill = {a.id: a.status for a in kis.plan().actions if a.id != "gli"}
    platform.careplan.kill()
    assert set(at_kill.values()) != {cp.ACTIVITY_STATUS_COMPLETED}, "killed mid-stream"
    for t in movers:
        t.join()
    platform.restart_careplan()
    action_ids = [a.id for a in kis.plan().actions if a.id != "gli"]

    def all_completed() -> bool:
        actions = {a.id: a for a in kis.plan().actions}
        return all(actions[i].status == cp.ACTIVITY_STATUS_COMPLETED for i in action_ids)

    _wait("every linked action to complete after the restart", all_completed)
    final = {a.id: a for a in kis.plan().actions}
    for offer in linked:
        action = next(a for a in final.values() if a.description == offer)
        assert action.referral_state.feedback_summary == f"klaar: {offer}"

    # No event applied twice: one consumer revision per applied event, and along the
    # history no action's referral status ever goes back.
    engine = create_engine(platform.careplan_db)
    try:
        with engine.connect() as conn:
            applied = conn.execute(text("SELECT count(*) FROM applied_events")).scalar_one()
            revisions = (
                conn.execute(
                    text(
                        "SELECT document FROM care_plan_revisions"
                        " WHERE patient_id = 'p-0001' ORDER BY version"
                    )
                )
                .scalars()
                .all()
            )
            authors = conn.execute(
                text("SELECT count(*) FROM care_plan_revisions WHERE author = :a"),
                {"a": CONSUMER_AUTHOR},
            ).scalar_one()
    finally:
        engine.dispose()
    assert applied == authors
    order = ["requested", "accepted", "in-progress", "completed"]
    for action_id in ["gli", *action_ids]:
        seen: list[str] = []
        for document in revisions:
            found = [a for a in document["content"]["actions"] if a["id"] == action_id]
            snapshot = found[0]["referral_state"] if found else None
            if snapshot and (not seen or seen[-1] != snapshot["status"]):
                seen.append(snapshot["status"])
        assert seen == [s for s in order if s in seen], f"{action_id} went back: {seen}"
        assert seen[-1] == "completed"

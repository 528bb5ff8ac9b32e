"""End to end: the OIDC issuer, identity and referral as real processes, driven the way a
chain information system (KIS) drives them.

1. The KIS flow: find an offer, refer, the provider accepts, starts and completes with
   feedback, and the KIS's watch stream sees every event in order.
2. Kill between commit and reply: with the fault-injection setting on, referral dies right
   after committing a create; after a restart the retried create (same request_id) returns
   the one referral that was committed.
3. A burst of transitions and creates; referral is killed (SIGKILL) in the middle, restarted
   on the same database, the stream resumed from the last cursor: every committed change
   arrives exactly once after de-duplication, and every create retried with its request_id
   yields exactly one referral.
4. The KIS as itself (its own client-credentials token, naming nobody): its stream and its
   list show its practice's referral and not another practice's, and identity's access log
   holds each read with the KIS as user and access point.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from sqlalchemy import create_engine, text

from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.database import fresh_database
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess, service_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROFILE = pb.PatientProfile(
    age=58,
    bmi=32.0,
    postcode="5612",
    municipality_code="GM0772",
    conditions=["T90"],
    languages=["nl"],
)
GLI = "offers/gli-beweegfit-cool"


def _cli(module: str, command: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", f"{module}.main", command],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def identity_process(local_idp: LocalIdp) -> Iterator[ServiceProcess]:
    with fresh_database("e2e_identity") as url:
        env = service_env(
            "identity",
            {
                "database_url": url,
                "oidc_issuer": local_idp.issuer,
                "bsn_pepper": "e2e-pepper",
                "grpc_port": "0",
                "grpc_host": "127.0.0.1",
            },
        )
        _cli("identity", "migrate", env)
        _cli("identity", "seed-demo", env)
        process = ServiceProcess("identity", env).start()
        try:
            yield process
        finally:
            process.stop()


class Referral:
    """The referral process over one database; restartable."""

    def __init__(self, env: dict[str, str], url: str) -> None:
        self.env = env
        self.url = url
        self.process: ServiceProcess | None = None
        self.channel: grpc.Channel | None = None
        self.stub: rpc_grpc.ReferralServiceStub

    def start(self, **extra: str) -> Referral:
        env = {**self.env, **service_env("referral", extra)}
        self.process = ServiceProcess("referral", env).start()
        self.channel = grpc.insecure_channel(self.process.target)
        self.stub = rpc_grpc.ReferralServiceStub(self.channel)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.stop(signal.SIGKILL)
        if self.channel is not None:
            self.channel.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self.channel is not None:
            self.channel.close()

    def scalar(self, sql: str, **params: Any) -> Any:
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql), params).scalar_one()
        finally:
            engine.dispose()


@pytest.fixture
def referral(local_idp: LocalIdp, identity_process: ServiceProcess) -> Iterator[Referral]:
    with fresh_database("e2e_referral") as url:
        env = service_env(
            "referral",
            {
                "database_url": url,
                "oidc_issuer": local_idp.issuer,
                "grpc_port": "0",
                "grpc_host": "127.0.0.1",
                "identity_target": identity_process.target,
                "oidc_client_secret": "svc-referral-secret",
                "watch_poll_seconds": "0.05",
            },
        )
        _cli("referral", "migrate", env)
        _cli("referral", "seed-demo", env)
        service = Referral(env, url)
        try:
            yield service
        finally:
            service.stop()


def _kis(tokens: Tokens, user: str = "dr.jansen") -> Any:
    """A clinician working in the KIS: the KIS client with the clinician's own token."""
    return bearer(tokens.user(user))


class Watcher(threading.Thread):
    """A KIS-side consumer of WatchReferralEvents that remembers the last cursor."""

    def __init__(self, stub: rpc_grpc.ReferralServiceStub, metadata: Any, after: int = 0) -> None:
        super().__init__(daemon=True)
        self.stub = stub
        self.metadata = metadata
        self.after = after
        self.events: list[pb.ReferralEvent] = []
        self.call: Any = None
        self.error: grpc.RpcError | None = None
        self.ready = threading.Event()

    def run(self) -> None:
        self.call = self.stub.WatchReferralEvents(
            rpc.WatchReferralEventsRequest(after_cursor=self.after), metadata=self.metadata
        )
        self.ready.set()
        try:
            for event in self.call:
                self.events.append(event)
        except grpc.RpcError as exc:
            self.error = exc

    @property
    def last_cursor(self) -> int:
        return self.events[-1].cursor if self.events else self.after

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            assert time.monotonic() < deadline, f"stream saw {len(self.events)} events"
            time.sleep(0.05)

    def cancel(self) -> None:
        if self.call is not None:
            self.call.cancel()
        self.join(timeout=5)


def test_the_kis_flow_end_to_end(referral: Referral, tokens: Tokens) -> None:
    referral.start()
    stub = referral.stub
    watcher = Watcher(stub, _kis(tokens))
    watcher.start()
    watcher.ready.wait(5)

    found = stub.FindOffers(
        rpc.FindOffersRequest(profile=PROFILE, eligible_only=True),
        metadata=_kis(tokens),
        timeout=10,
    )
    offer = found.matches[0]
    assert offer.offer.name == GLI and offer.eligibility.eligible
    created = stub.CreateReferral(
        rpc.CreateReferralRequest(
            parent="patients/p-0001",
            referral=pb.Referral(
                offer=offer.offer.name, reason="DM2 with obesity", profile=PROFILE
            ),
            request_id="e2e-flow-1",
        ),
        metadata=_kis(tokens),
        timeout=10,
    )
    provider = bearer(tokens.user("coach.degroot"))
    for status in (pb.REFERRAL_STATUS_ACCEPTED, pb.REFERRAL_STATUS_IN_PROGRESS):
        stub.TransitionReferral(
            rpc.TransitionReferralRequest(name=created.name, status=status),
            metadata=provider,
            timeout=10,
        )
    stub.TransitionReferral(
        rpc.TransitionReferralRequest(
            name=created.name,
            status=pb.REFERRAL_STATUS_COMPLETED,
            outcome=pb.ReferralOutcome(
                attendance=pb.ATTENDANCE_FULL,
                result_summary="Completed the programme",
                measurements=[pb.Measurement(code="weight-change", value=-6.2, unit="kg")],
                enrolment=pb.ENROLMENT_ENROLLED,
            ),
        ),
        metadata=provider,
        timeout=10,
    )
    watcher.wait_for(lambda evs: any(e.status == pb.REFERRAL_STATUS_COMPLETED for e in evs))
    watcher.cancel()
    mine = [e for e in watcher.events if e.referral == created.name]
    assert [(e.type, e.status) for e in mine] == [
        (pb.REFERRAL_EVENT_TYPE_CREATED, pb.REFERRAL_STATUS_REQUESTED),
        (pb.REFERRAL_EVENT_TYPE_STATUS_CHANGED, pb.REFERRAL_STATUS_ACCEPTED),
        (pb.REFERRAL_EVENT_TYPE_STATUS_CHANGED, pb.REFERRAL_STATUS_IN_PROGRESS),
        (pb.REFERRAL_EVENT_TYPE_STATUS_CHANGED, pb.REFERRAL_STATUS_COMPLETED),
    ]
    assert [e.cursor for e in mine] == sorted(e.cursor for e in mine)
    assert mine[-1].outcome.measurements[0].value == pytest.approx(-6.2)
    assert mine[0].referrer_organisation == "organisations/gp-de-linde"
    assert mine[0].target_organisation == "organisations/gli-beweegfit"
    assert mine[0].patient == "patients/p-0001"

    # careplan's service account sees the same events (every tenant).
    careplan = list(
        stub.WatchReferralEvents(
            rpc.WatchReferralEventsRequest(no_follow=True),
            metadata=bearer(tokens.client("svc-careplan")),
            timeout=10,
        )
    )
    assert [e.event_id for e in careplan if e.referral == created.name] == [
        e.event_id for e in mine
    ]


def test_a_create_killed_between_commit_and_reply_is_retried_into_one_referral(
    referral: Referral, tokens: Tokens
) -> None:
    for n, patient in enumerate(["p-0001", "p-0002"]):
        referral.start(fault_exit_after_create_commit="true")
        request = rpc.CreateReferralRequest(
            parent=f"patients/{patient}",
            referral=pb.Referral(
                offer="offers/gli-beweegfit-dietist-groep", reason="diet", profile=PROFILE
            ),
            request_id=f"e2e-kill-{n}",
        )
        with pytest.raises(grpc.RpcError) as caught:
            referral.stub.CreateReferral(request, metadata=_kis(tokens), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert referral.process is not None and referral.process.process is not None
        assert referral.process.process.wait(timeout=10) == 17
        referral.stop()
        referral.start()
        first = referral.stub.CreateReferral(request, metadata=_kis(tokens), timeout=10)
        again = referral.stub.CreateReferral(request, metadata=_kis(tokens), timeout=10)
        assert again.name == first.name
        assert (
            referral.scalar(
                "SELECT count(*) FROM referrals WHERE patient_id = :p AND offer_id = :o",
                p=patient,
                o="gli-beweegfit-dietist-groep",
            )
            == 1
        )
        referral.stop()


def test_a_kill_in_a_burst_loses_no_committed_change(referral: Referral, tokens: Tokens) -> None:
    referral.start()
    kis = _kis(tokens)
    provider = bearer(tokens.user("coach.degroot"))
    offers = [
        "offers/gli-beweegfit-cool",
        "offers/gli-beweegfit-dietist-groep",
        "offers/gli-beweegfit-stoppen-met-roken",
    ]
    names: list[str] = []
    for i, offer in enumerate(offers):
        names.append(
            referral.stub.CreateReferral(
                rpc.CreateReferralRequest(
                    parent="patients/p-0001",
                    referral=pb.Referral(offer=offer, reason="burst", profile=PROFILE),
                    request_id=f"burst-base-{i}",
                ),
                metadata=kis,
                timeout=10,
            ).name
        )
    watcher = Watcher(referral.stub, kis)
    watcher.start()
    watcher.wait_for(lambda evs: len(evs) >= 3)

    # A burst: each referral walks accepted -> in-progress -> on-hold -> in-progress ...
    steps = [pb.REFERRAL_STATUS_ACCEPTED, pb.REFERRAL_STATUS_IN_PROGRESS]
    steps += [pb.REFERRAL_STATUS_ON_HOLD, pb.REFERRAL_STATUS_IN_PROGRESS] * 15
    done: list[tuple[str, int]] = []
    stop = threading.Event()

    def burst(name: str) -> None:
        for status in steps:
            if stop.is_set():
                return
            try:
                referral.stub.TransitionReferral(
                    rpc.TransitionReferralRequest(name=name, status=status, reason="burst"),
                    metadata=provider,
                    timeout=5,
                )
            except grpc.RpcError:
                return
            done.append((name, status))

    workers = [threading.Thread(target=burst, args=(n,)) for n in names]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 30
    while len(done) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    referral.kill()
    stop.set()
    for w in workers:
        w.join(timeout=10)
    watcher.join(timeout=10)
    assert 20 <= len(done) < len(steps) * len(names)  # the kill fell inside the burst
    resume_from = watcher.last_cursor
    before_kill = list(watcher.events)

    referral.start()
    resumed = Watcher(referral.stub, kis, after=resume_from)
    resumed.start()
    committed = int(referral.scalar("SELECT count(*) FROM outbox"))
    resumed.wait_for(lambda evs: len(before_kill) + len(evs) >= committed)
    resumed.cancel()

    unique = {e.event_id: e for e in before_kill + resumed.events}
    assert len(unique) == committed
    cursors = [e.cursor for e in before_kill + resumed.events]
    assert cursors == sorted(set(cursors))
    seen = [(e.referral, e.status) for e in sorted(unique.values(), key=lambda e: e.cursor)]
    for change in done:  # every change whose reply arrived is in the stream, in order
        assert change in seen
    for name in names:
        per_referral = [s for (r, s) in seen if r == name]
        assert per_referral[0] == pb.REFERRAL_STATUS_REQUESTED
        replied = [s for (r, s) in done if r == name]
        assert per_referral[1 : 1 + len(replied)] == replied


KIS_ACCOUNT = "f593cd7d-cc62-5ac5-898e-e9d97e2c2ae8"  # service-account-carenet-kis


def _kis_entries(stub: Any, tokens: Tokens, patient: str) -> list[Any]:
    """The access-log entries of a patient written for the KIS as itself, as the care
    group's auditor reads them through identity's API."""
    auditor = bearer(tokens.user("auditor.dekker"))
    found: list[Any] = []
    token = ""
    while True:
        page = stub.ListAccessLogEntries(
            id_rpc.ListAccessLogEntriesRequest(patient=patient, page_size=1000, page_token=token),
            metadata=auditor,
            timeout=10,
        )
        found += [e for e in page.access_log_entries if e.user == KIS_ACCOUNT]
        token = page.next_page_token
        if not token:
            return found


def test_the_kis_as_itself_lists_and_follows_its_practices_referrals_only(
    referral: Referral, identity_process: ServiceProcess, tokens: Tokens
) -> None:
    """The KIS's own client-credentials token (realm role ``delegate``, gp-de-linde, naming
    nobody) against identity and referral as processes: its live stream and its list show
    the referral gp-de-linde made and not the one gp-het-anker made, and every read is in
    identity's access log with the KIS as user, responsible user and access point."""
    referral.start()
    stub = referral.stub
    kis = bearer(tokens.client("carenet-kis"))
    watcher = Watcher(stub, kis)
    watcher.start()
    watcher.ready.wait(5)

    def create(patient: str, user: str) -> pb.Referral:
        made: pb.Referral = stub.CreateReferral(
            rpc.CreateReferralRequest(
                parent=f"patients/{patient}",
                referral=pb.Referral(offer=GLI, reason="DM2 with obesity", profile=PROFILE),
                request_id=f"e2e-kis-self-{patient}",
            ),
            metadata=bearer(tokens.user(user)),
            timeout=10,
        )
        return made

    mine = create("p-0001", "dr.jansen")
    theirs = create("p-0003", "dr.devries")
    assert theirs.referrer_organisation == "organisations/gp-het-anker"
    # an event of the practice's referral after gp-het-anker's: once the stream shows it, it
    # has passed gp-het-anker's event (cursor order)
    stub.TransitionReferral(
        rpc.TransitionReferralRequest(name=mine.name, status=pb.REFERRAL_STATUS_ACCEPTED),
        metadata=bearer(tokens.user("coach.degroot")),
        timeout=10,
    )
    watcher.wait_for(
        lambda evs: any(
            e.referral == mine.name and e.status == pb.REFERRAL_STATUS_ACCEPTED for e in evs
        )
    )
    watcher.cancel()
    followed = {e.referral for e in watcher.events}
    assert mine.name in followed
    assert theirs.name not in followed
    assert all(
        "organisations/gp-de-linde" in (e.referrer_organisation, e.target_organisation)
        for e in watcher.events
    )

    listed = stub.ListReferrals(
        rpc.ListReferralsRequest(parent="patients/-", page_size=100), metadata=kis, timeout=10
    )
    names = {r.name for r in listed.referrals}
    assert mine.name in names
    assert theirs.name not in names
    assert all(
        "organisations/gp-de-linde" in (r.referrer_organisation, r.target_organisation)
        for r in listed.referrals
    )

    with grpc.insecure_channel(identity_process.target) as channel:
        identity = id_grpc.IdentityServiceStub(channel)
        entries = _kis_entries(identity, tokens, "patients/p-0001")
        # the stream's question about the referral and the list's about the patient
        assert len(entries) >= 2
        for entry in entries:
            assert (entry.responsible_user, entry.access_point) == (KIS_ACCOUNT, "carenet-kis")
            assert list(entry.roles) == ["delegate"]
            assert entry.organisation == "organisations/gp-de-linde"
            assert (entry.data_category, entry.action) == (
                id_pb.DATA_CATEGORY_REFERRAL,
                id_pb.ACTION_READ,
            )
            assert (entry.decision, entry.basis) == (
                id_pb.DECISION_PERMIT,
                id_pb.BASIS_CARE_RELATIONSHIP,
            )
        # gp-het-anker's patient was never asked about for the KIS
        assert _kis_entries(identity, tokens, "patients/p-0003") == []

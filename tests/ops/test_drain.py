"""Restarts that callers do not notice: drain on SIGTERM, streams ended for resumption, and a
rolling restart of two identity processes under load from 8 client threads."""

from __future__ import annotations

import signal
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rf_grpc
from servicekit.channels import ChannelSettings, open_channel, with_retries
from testkit.database import fresh_database
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess
from testkit.rpc import failure

from .conftest import Load, cli, free_port, list_organisations, start_identity

DRAIN = 1.5


def _watch_health(target: str, seen: dict[str, float], stop: threading.Event) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while not stop.is_set():
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    seen.setdefault("not_serving", time.monotonic())
            except grpc.RpcError:
                seen.setdefault("unreachable", time.monotonic())
            time.sleep(0.005)


def test_on_sigterm_health_turns_not_serving_and_calls_are_served_through_the_drain(
    local_idp: LocalIdp, identity_db: str, tokens: Tokens
) -> None:
    identity = start_identity(
        local_idp.issuer, identity_db, drain_seconds=str(DRAIN), shutdown_grace_seconds="30"
    )
    token = tokens.user("dr.jansen")
    channel = grpc.insecure_channel(identity.target)
    call = list_organisations(channel, token)
    call(5)
    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_health, args=(identity.target, seen, stop))
    watcher.start()
    try:
        with Load(lambda: call(5), threads=8) as load:
            time.sleep(0.5)
            assert identity.process is not None
            sent = time.monotonic()
            identity.process.send_signal(signal.SIGTERM)
            identity.process.wait(timeout=15)
            exited = time.monotonic()
        served_after = load.counts(since=sent + 0.05)
        first_failure = load.first_failure()
    finally:
        stop.set()
        watcher.join()
        channel.close()
    # NOT_SERVING shows within a few milliseconds of the signal ...
    assert "not_serving" in seen and seen["not_serving"] - sent < 0.5
    # ... and calls keep being answered through the drain period after it.
    assert served_after["OK"] > 20, served_after
    # No call fails before the drain is over.
    assert first_failure is not None and first_failure - seen["not_serving"] >= DRAIN - 0.2
    # Nothing fails INTERNAL. (A client that does not watch health may see CANCELLED for
    # a call that raced the stop itself; the channels of servicekit watch health and send
    # a draining instance nothing: see the rolling restart below.)
    assert set(load.counts()) <= {"OK", "UNAVAILABLE", "CANCELLED"}, load.counts()
    assert load.counts()["CANCELLED"] <= 8, load.counts()
    # It exits soon after the drain, not after its 30 s grace period.
    assert exited - sent < DRAIN + 8, identity.lines[-6:]


def test_a_rolling_restart_of_two_instances_under_load_fails_no_call(
    local_idp: LocalIdp, identity_db: str, tokens: Tokens
) -> None:
    ports = [free_port(), free_port()]
    processes = [
        start_identity(local_idp.issuer, identity_db, grpc_port=str(p), drain_seconds="1")
        for p in ports
    ]
    target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
    channel = open_channel(target, settings=ChannelSettings())
    call = list_organisations(channel, tokens.user("dr.jansen"))

    def retried() -> object:
        return with_retries(call, 10)

    try:
        with Load(retried, threads=8) as load:
            time.sleep(1)
            for index, port in enumerate(ports):
                # As a Deployment with maxUnavailable 0 does: the old pod is drained and
                # stopped, and its replacement comes up (here on the same address).
                processes[index].stop(signal.SIGTERM, timeout=20)
                processes[index] = start_identity(
                    local_idp.issuer, identity_db, grpc_port=str(port), drain_seconds="1"
                )
                time.sleep(2.5)  # ready, and the channel reconnected (backoff at most 2 s)
            time.sleep(1)
        counts = load.counts()
    finally:
        for process in processes:
            process.stop()
        channel.close()
    assert counts["OK"] > 200, counts
    assert set(counts) == {"OK"}, counts


def test_a_second_signal_cuts_the_drain_short(local_idp: LocalIdp, identity_db: str) -> None:
    identity: ServiceProcess = start_identity(local_idp.issuer, identity_db, drain_seconds="30")
    assert identity.process is not None
    started = time.monotonic()
    identity.process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    identity.process.send_signal(signal.SIGINT)
    identity.process.wait(timeout=10)
    assert time.monotonic() - started < 5


def test_an_open_event_stream_ends_unavailable_at_sigterm_so_its_consumer_resumes_elsewhere(
    local_idp: LocalIdp, identity_db: str, tokens: Tokens
) -> None:
    identity = start_identity(local_idp.issuer, identity_db)
    with fresh_database("ops_referral_stream") as referral_db:
        env = {
            "REFERRAL_OIDC_ISSUER": local_idp.issuer,
            "REFERRAL_GRPC_HOST": "127.0.0.1",
            "REFERRAL_GRPC_PORT": "0",
            "REFERRAL_DATABASE_URL": referral_db,
            "REFERRAL_IDENTITY_TARGET": identity.target,
            "REFERRAL_OIDC_CLIENT_SECRET": "svc-referral-secret",
            "REFERRAL_DRAIN_SECONDS": "0.5",
        }
        cli("referral", "migrate", env)
        referral = ServiceProcess("referral", env).start()
        channel = grpc.insecure_channel(referral.target)
        try:
            stream = rf_grpc.ReferralServiceStub(channel).WatchReferralEvents(
                rf_rpc.WatchReferralEventsRequest(after_cursor=0),
                metadata=bearer(tokens.client("svc-careplan")),
                timeout=60,
            )
            time.sleep(0.5)  # the stream is open and polling
            assert referral.process is not None
            sent = time.monotonic()
            referral.process.send_signal(signal.SIGTERM)
            with pytest.raises(grpc.RpcError) as raised:
                list(stream)
            ended = time.monotonic() - sent
            referral.process.wait(timeout=15)
            exited = time.monotonic() - sent
        finally:
            channel.close()
            referral.stop()
            identity.stop()
    seen = failure(raised.value)
    assert (seen.code, seen.reason) == (grpc.StatusCode.UNAVAILABLE, "SERVER_DRAINING")
    # The stream ends right after the drain (one poll), and the process does not wait out
    # its 10 s grace period for it.
    assert ended < 0.5 + 1.0
    assert exited < 3.0


def test_a_rolling_restart_of_referral_under_load_fails_no_call(
    local_idp: LocalIdp, identity_db: str, tokens: Tokens
) -> None:
    identity = start_identity(local_idp.issuer, identity_db)
    with fresh_database("ops_referral_rolling") as referral_db:
        ports = [free_port(), free_port()]

        def env(port: int) -> dict[str, str]:
            return {
                "REFERRAL_OIDC_ISSUER": local_idp.issuer,
                "REFERRAL_GRPC_HOST": "127.0.0.1",
                "REFERRAL_GRPC_PORT": str(port),
                "REFERRAL_DATABASE_URL": referral_db,
                "REFERRAL_IDENTITY_TARGET": identity.target,
                "REFERRAL_OIDC_CLIENT_SECRET": "svc-referral-secret",
                "REFERRAL_DRAIN_SECONDS": "1",
            }

        cli("referral", "migrate", env(0))
        cli("referral", "seed-demo", env(0))
        processes = [ServiceProcess("referral", env(p)).start() for p in ports]
        target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
        channel = open_channel(target, settings=ChannelSettings())
        stub = rf_grpc.ReferralServiceStub(channel)
        token = bearer(tokens.user("dr.jansen"))

        def call(timeout: float) -> object:
            return stub.ListOffers(
                rf_rpc.ListOffersRequest(page_size=5), metadata=token, timeout=timeout
            )

        try:
            with Load(lambda: with_retries(call, 10), threads=8) as load:
                time.sleep(1)
                for index, port in enumerate(ports):
                    processes[index].stop(signal.SIGTERM, timeout=20)
                    processes[index] = ServiceProcess("referral", env(port)).start()
                    time.sleep(2.5)
                time.sleep(1)
            counts = load.counts()
        finally:
            for process in processes:
                process.stop()
            channel.close()
            identity.stop()
    assert counts["OK"] > 100, counts
    assert set(counts) == {"OK"}, counts

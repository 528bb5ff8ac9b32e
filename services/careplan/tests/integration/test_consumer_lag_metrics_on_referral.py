"""careplan's referral-event consumer, as the service composes it, against real identity and
referral processes on real ports with a real service-account token: its lag gauge
(``carenet.outbox.lag``, consumer ``careplan``), read through an in-process metric reader,
is 0 once it is caught up on the live stream and grows while referral is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import grpc

from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rf_grpc
from careplan.config import Settings
from careplan.main import build_consumer, build_deps
from careplan.use_cases import referral_links
from servicekit import metrics as sk_metrics
from servicekit.channels import ServiceAccountTokens
from servicekit.migrations import upgrade
from testkit.database import fresh_database
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.metrics import MetricReadings
from testkit.processes import ServiceProcess

PROFILE = rf.PatientProfile(
    conditions=["T90"], age=58, bmi=31.5, postcode="5612", municipality_code="GM0772"
)


def _cli(module: str, command: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", f"{module}.main", command],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )


def _wait(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _lag(metrics: MetricReadings) -> float:
    return metrics.value(sk_metrics.OUTBOX_LAG, consumer="careplan")


def test_the_lag_is_0_on_the_live_stream_and_grows_while_referral_is_gone(
    local_idp: LocalIdp, tokens: Tokens, domain_metrics: MetricReadings
) -> None:
    with (
        fresh_database("cp_lag_identity") as identity_db,
        fresh_database("cp_lag_referral") as referral_db,
        fresh_database("cp_lag_careplan") as careplan_db,
    ):
        common = {"OIDC_ISSUER": local_idp.issuer, "GRPC_HOST": "127.0.0.1", "GRPC_PORT": "0"}
        identity_env = {f"IDENTITY_{k}": v for k, v in common.items()} | {
            "IDENTITY_DATABASE_URL": identity_db,
            "IDENTITY_BSN_PEPPER": "lag-pepper",
        }
        _cli("identity", "migrate", identity_env)
        _cli("identity", "seed-demo", identity_env)
        identity = ServiceProcess("identity", identity_env).start()
        referral: ServiceProcess | None = None
        try:
            referral_env = {f"REFERRAL_{k}": v for k, v in common.items()} | {
                "REFERRAL_DATABASE_URL": referral_db,
                "REFERRAL_IDENTITY_TARGET": identity.target,
                "REFERRAL_OIDC_CLIENT_SECRET": "svc-referral-secret",
                "REFERRAL_WATCH_POLL_SECONDS": "0.05",
            }
            _cli("referral", "migrate", referral_env)
            _cli("referral", "seed-demo", referral_env)
            referral = ServiceProcess("referral", referral_env).start()
            settings = Settings(
                database_url=careplan_db,
                oidc_issuer=local_idp.issuer,
                identity_target=identity.target,
                referral_target=referral.target,
                oidc_client_secret="svc-careplan-secret",
                consumer_retry_seconds=0.2,
            )
            upgrade("careplan.migrations", careplan_db)
            account = ServiceAccountTokens.from_settings(settings)
            consumer = build_consumer(settings, build_deps(settings, account), account)
            assert consumer is not None
            consumer.lag = referral_links.ConsumerLag(consumer.deps.clock, connected_after=0.5)
            consumer.start()
            try:
                _wait("the live stream", lambda: _lag(domain_metrics) == 0, timeout=10)
                with grpc.insecure_channel(referral.target) as channel:
                    rf_grpc.ReferralServiceStub(channel).CreateReferral(
                        rf_rpc.CreateReferralRequest(
                            parent="patients/p-0001",
                            referral=rf.Referral(
                                offer="offers/gli-beweegfit-cool",
                                reason="Overweight with DM2",
                                profile=PROFILE,
                            ),
                        ),
                        metadata=bearer(tokens.user("dr.jansen")),
                        timeout=10,
                    )
                _wait("the event applied", lambda: consumer.seen == 1 and _lag(domain_metrics) == 0)
                assert referral_links.consumer_cursor(consumer.deps) > 0
                referral.stop()
                referral = None
                time.sleep(1.5)
                first = _lag(domain_metrics)
                time.sleep(0.5)
                second = _lag(domain_metrics)
                assert 1.0 <= first < second, (first, second)
            finally:
                consumer.stop()
        finally:
            if referral is not None:
                referral.stop()
            identity.stop()

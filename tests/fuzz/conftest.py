"""The fuzz suite's fixture: identity, referral, careplan and outcomes as real processes on
real ports, each on a fresh PostgreSQL database its own CLI migrated and seeded with the demo
region, behind the test OIDC issuer (testkit's ``local_idp``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import grpc
import pytest

from testkit.database import fresh_database
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess

from .harness import TALLY, Deadlines, report_folder
from .live import Platform, _cli, _in_parallel, callers_for, harvest


@pytest.fixture(scope="session")
def platform(local_idp: LocalIdp) -> Iterator[Platform]:
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(fresh_database(f"fuzz_{name}"))
            for name in ("identity", "referral", "careplan", "outcomes")
        }

        def env(name: str, **values: str) -> dict[str, str]:
            common = {
                "database_url": urls[name],
                "oidc_issuer": local_idp.issuer,
                "grpc_host": "127.0.0.1",
                "grpc_port": "0",
                "log_level": "INFO",  # server_started, which ServiceProcess waits for, is INFO
                "shutdown_grace_seconds": "1",
                **values,
            }
            return {f"{name.upper()}_{k.upper()}": v for k, v in common.items()}

        identity_env = env("identity", bsn_pepper="fuzz-pepper")
        processes: dict[str, ServiceProcess] = {}

        def stop_all() -> None:
            _in_parallel(*(p.stop for p in processes.values()))

        stack.callback(stop_all)

        def start(name: str, environment: dict[str, str]) -> ServiceProcess:
            process = ServiceProcess(name, environment)
            try:
                return process.start(timeout=60)
            finally:
                processes[name] = process

        seeded: dict[str, dict[str, Any]] = {}

        def prepare_identity() -> None:
            _cli("identity", identity_env, "migrate")
            seeded["identity"] = _cli("identity", identity_env, "seed-demo")
            start("identity", identity_env)

        def prepare_referral_data() -> None:
            # the menu card and p-0001's GLI referral need no other service
            _cli("referral", env("referral", identity_target="-"), "migrate")
            seeded["referral"] = _cli(
                "referral", env("referral", identity_target="-"), "seed-demo", "--with-referral"
            )

        def migrate(name: str) -> Any:
            return lambda: _cli(name, env(name, identity_target="-"), "migrate")

        _in_parallel(
            prepare_identity, prepare_referral_data, migrate("careplan"), migrate("outcomes")
        )
        identity = processes["identity"].target
        referral_env = env(
            "referral",
            identity_target=identity,
            oidc_client_secret="svc-referral-secret",
            watch_poll_seconds="0.05",
        )
        outcomes_env = env(
            "outcomes",
            identity_target=identity,
            oidc_client_id="svc-outcomes",
            oidc_client_secret="svc-outcomes-secret",
        )
        careplan_env = env(
            "careplan",
            identity_target=identity,
            oidc_client_secret="svc-careplan-secret",
            consume_referral_events="false",
        )
        referral_name = str(seeded["referral"].get("referral", ""))

        def prepare_careplan() -> None:
            seeded["careplan"] = _cli(
                "careplan", careplan_env, "seed-demo", *([referral_name] if referral_name else [])
            )
            start("careplan", careplan_env)

        def prepare_outcomes() -> None:
            seeded["outcomes"] = _cli("outcomes", outcomes_env, "seed-demo")
            start("outcomes", outcomes_env)

        _in_parallel(lambda: start("referral", referral_env), prepare_careplan, prepare_outcomes)

        channels = {
            name: stack.enter_context(
                grpc.insecure_channel(
                    p.target,
                    options=[
                        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                        ("grpc.max_send_message_length", 64 * 1024 * 1024),
                        ("grpc.max_metadata_size", 1024 * 1024),
                    ],
                )
            )
            for name, p in processes.items()
        }
        running = Platform(
            processes=processes,
            channels=channels,
            callers=callers_for(local_idp),
            seeded=seeded,
            deadlines=Deadlines.from_env(),
        )
        running.corpus = harvest(running)
        yield running
        TALLY.write_summary()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """With ``make fuzz`` (or a report folder): how often each RPC was called, and what it
    answered."""
    if not TALLY.calls or not (
        os.environ.get("CARENET_FUZZ_PROFILE") == "fuzz" or report_folder() is not None
    ):
        return
    terminalreporter.section("fuzz: calls per RPC and the codes they answered")
    for key in sorted(TALLY.calls):
        codes = ", ".join(f"{c} {n}" for c, n in TALLY.codes[key].most_common())
        terminalreporter.write_line(f"{key:52s} {TALLY.calls[key]:7d}  {codes}")

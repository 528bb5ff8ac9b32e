"""The whole platform as processes, for tests of its clients (the web front, the FHIR API,
the client library): the local issuer, the four services on fresh PostgreSQL databases with
the demo region's data, each started the way ``make run`` starts it; and the FHIR API as a
process in front of it (``running_fhir``)."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit.database import fresh_database
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess

SERVICES = ("identity", "referral", "careplan", "outcomes")


def run_cli(service: str, command: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    """``python -m <service>.main <command> <args>``; the last JSON object it printed."""
    result = subprocess.run(
        [sys.executable, "-m", f"{service}.main", command, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{service} {command} failed:\n{result.stdout}\n{result.stderr}")
    for line in reversed(result.stdout.splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            return found
    return {}


@dataclass
class Platform:
    idp: LocalIdp
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    #: what the demo seed of referral reported (e.g. the id of the seeded referral)
    seeded: dict[str, Any] = field(default_factory=dict)

    def target(self, service: str) -> str:
        return self.services[service].target

    def targets(self, prefix: str) -> dict[str, str]:
        """``<PREFIX>_<SERVICE>_TARGET`` for each service, for a client's settings."""
        return {f"{prefix}_{name.upper()}_TARGET": p.target for name, p in self.services.items()}


@contextmanager
def running_platform(
    workdir: Path, *, name: str = "platform", realm_file: Path | None = None, ttl_seconds: int = 600
) -> Iterator[Platform]:
    """Start the issuer and the four services; stop them all on the way out."""
    with ExitStack() as stack:
        idp = stack.enter_context(
            LocalIdp.start(
                keys_file=workdir / "jwks.json", realm_file=realm_file, ttl_seconds=ttl_seconds
            )
        )
        dbs = {s: stack.enter_context(fresh_database(f"{name}_{s}")) for s in SERVICES}
        platform = Platform(idp)
        common = {"OIDC_ISSUER": idp.issuer, "GRPC_HOST": "127.0.0.1", "GRPC_PORT": "0"}

        def env(service: str, **extra: str) -> dict[str, str]:
            prefix = service.upper()
            values = {f"{prefix}_{k}": v for k, v in common.items()} | {
                f"{prefix}_DATABASE_URL": dbs[service],
                f"{prefix}_OIDC_CLIENT_ID": f"svc-{service}",
                f"{prefix}_OIDC_CLIENT_SECRET": f"svc-{service}-secret",
            }
            values |= platform.targets(prefix)
            return values | {f"{prefix}_{k}": v for k, v in extra.items()}

        def start(service: str, environment: dict[str, str]) -> None:
            process = ServiceProcess(service, environment).start()
            stack.callback(process.stop)
            platform.services[service] = process

        identity_env = env("identity", BSN_PEPPER=f"{name}-pepper")
        run_cli("identity", "migrate", identity_env)
        run_cli("identity", "seed-demo", identity_env)
        start("identity", identity_env)
        referral_env = env("referral", WATCH_POLL_SECONDS="0.05")
        run_cli("referral", "migrate", referral_env)
        platform.seeded = run_cli("referral", "seed-demo", referral_env, "--with-referral")
        start("referral", referral_env)
        careplan_env = env("careplan", CONSUMER_RETRY_SECONDS="0.2")
        run_cli("careplan", "migrate", careplan_env)
        run_cli("careplan", "seed-demo", careplan_env, str(platform.seeded.get("referral", "")))
        start("careplan", careplan_env)
        outcomes_env = env("outcomes")
        run_cli("outcomes", "migrate", outcomes_env)
        run_cli("outcomes", "seed-demo", outcomes_env)
        start("outcomes", outcomes_env)
        yield platform


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class FrontProcess:
    """An HTTP front (``python -m <module> serve``) in front of a platform; its output in
    ``lines``."""

    process: subprocess.Popen[str]
    port: int
    path: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


@contextmanager
def running_front(
    module: str,
    prefix: str,
    platform: Platform,
    settings: dict[str, str],
    *,
    port: int = 0,
    path: str = "",
) -> Iterator[FrontProcess]:
    """The front ``module`` (e.g. ``web.main``) over ``platform`` on ``port`` (a free one by
    default), with ``<PREFIX>_<NAME>`` settings from ``settings``."""
    port = port or free_port()
    env = {
        **os.environ,
        f"{prefix}_HOST": "127.0.0.1",
        f"{prefix}_PORT": str(port),
        f"{prefix}_OIDC_ISSUER": platform.idp.issuer,
        **platform.targets(prefix),
        **{f"{prefix}_{k.upper()}": v for k, v in settings.items()},
    }
    process = subprocess.Popen(
        [sys.executable, "-m", module, "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    front = FrontProcess(process, port, path)
    started: queue.Queue[int] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            front.lines.append(line.rstrip())
            if '"server_started"' in line:
                started.put(1)

    threading.Thread(target=read, daemon=True).start()
    try:
        started.get(timeout=30)
    except queue.Empty:
        process.kill()
        raise RuntimeError(f"{module} did not start:\n" + "\n".join(front.lines[-40:])) from None
    try:
        yield front
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def running_fhir(platform: Platform, **settings: str) -> Iterator[FrontProcess]:
    """The FHIR API over ``platform`` on a free port (``FHIR_<NAME>`` from ``settings``)."""
    with running_front("fhir_api.main", "FHIR", platform, settings, path="/fhir/R4") as front:
        yield front

"""Starting real services for benchmarks: a fresh database, the local issuer, and services
run as their own processes (``python -m <svc>.main serve``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from testkit.database import create_database, drop_database
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess

BENCH_PEPPER = "bench-pepper"


@dataclass
class Platform:
    idp: LocalIdp
    database_url: str
    processes: dict[str, ServiceProcess]

    def target(self, name: str) -> str:
        return self.processes[name].target


def service_env(
    name: str, url: str, idp: LocalIdp, extra: dict[str, str] | None = None
) -> dict[str, str]:
    prefix = name.upper()
    env = {
        f"{prefix}_DATABASE_URL": url,
        f"{prefix}_OIDC_ISSUER": idp.issuer,
        f"{prefix}_GRPC_HOST": "127.0.0.1",
        f"{prefix}_GRPC_PORT": "0",
        "IDENTITY_BSN_PEPPER": BENCH_PEPPER,
    }
    return env | (extra or {})


def run_cli(name: str, command: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", f"{name}.main", command],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )


@contextmanager
def platform(services: dict[str, dict[str, str]]) -> Iterator[Platform]:
    """Starts the issuer and each named service (migrated, demo-seeded) on one fresh database
    per service. ``services`` maps a name to extra environment variables."""
    with ExitStack() as stack:
        keys = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "jwks.json"
        idp = stack.enter_context(LocalIdp.start(keys_file=keys, ttl_seconds=3600))
        processes: dict[str, ServiceProcess] = {}
        first_url = ""
        for name, extra in services.items():
            url = create_database(f"bench_{name}")
            stack.callback(drop_database, url)
            first_url = first_url or url
            targets = {
                f"{name.upper()}_{dep.upper()}_TARGET": p.target for dep, p in processes.items()
            }
            env = service_env(name, url, idp, targets | extra)
            run_cli(name, "migrate", env)
            run_cli(name, "seed-demo", env)
            process = ServiceProcess(name, env).start()
            stack.callback(process.stop)
            processes[name] = process
        yield Platform(idp, first_url, processes)

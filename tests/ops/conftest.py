"""Operations tests: real service processes on real ports, the real local issuer, and a real
PostgreSQL; the processes are stopped, killed and restarted as Kubernetes would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc
import pytest

from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from testkit.database import fresh_database
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess


def cli(module: str, command: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", f"{module}.main", command, *args],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return done.stdout


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def identity_env(issuer: str, database_url: str, **extra: str) -> dict[str, str]:
    env = {
        "IDENTITY_OIDC_ISSUER": issuer,
        "IDENTITY_GRPC_HOST": "127.0.0.1",
        "IDENTITY_GRPC_PORT": "0",
        "IDENTITY_DATABASE_URL": database_url,
        "IDENTITY_BSN_PEPPER": "ops-pepper",
    }
    env.update({f"IDENTITY_{k.upper()}": v for k, v in extra.items()})
    return env


@pytest.fixture(scope="module")
def identity_db(local_idp: LocalIdp) -> Iterator[str]:
    """A migrated identity database seeded with the demo region."""
    with fresh_database("ops_identity") as url:
        env = identity_env(local_idp.issuer, url)
        cli("identity", "migrate", env)
        cli("identity", "seed-demo", env)
        yield url


def start_identity(issuer: str, database_url: str, **extra: str) -> ServiceProcess:
    return ServiceProcess("identity", identity_env(issuer, database_url, **extra)).start()


@dataclass
class Load:
    """Client threads calling one RPC in a loop until stopped; each outcome is timed."""

    call: Callable[[], object]
    threads: int = 8
    outcomes: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.call()
                outcome = "OK"
            except grpc.RpcError as error:
                outcome = error.code().name
            with self._lock:
                self.outcomes.append((time.monotonic(), outcome))

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)

    def counts(self, since: float = 0.0) -> Counter[str]:
        with self._lock:
            return Counter(o for t, o in self.outcomes if t >= since)

    def first_failure(self) -> float | None:
        with self._lock:
            return next((t for t, o in self.outcomes if o != "OK"), None)


def list_organisations(
    channel: grpc.Channel, token: str
) -> Callable[[float], id_rpc.ListOrganisationsResponse]:
    stub = id_grpc.IdentityServiceStub(channel)

    def call(timeout: float) -> id_rpc.ListOrganisationsResponse:
        reply: id_rpc.ListOrganisationsResponse = stub.ListOrganisations(
            id_rpc.ListOrganisationsRequest(page_size=5),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=timeout,
        )
        return reply

    return call


class TlsServiceProcess(ServiceProcess):
    """A service process whose gRPC port serves TLS: readiness is read, as the kubelet
    does, from the plaintext health-only port ``<SVC>_HEALTH_PORT``."""

    def ready_target(self) -> str:
        return f"127.0.0.1:{self.env[f'{self.name.upper()}_HEALTH_PORT']}"

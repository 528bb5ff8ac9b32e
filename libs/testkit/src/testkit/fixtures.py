"""Pytest fixtures shared by every suite (loaded from the root conftest.py).

- ``local_idp``: one real OIDC issuer (``infra/local-idp``) per test run, serving the realm
  export plus the test users of a second care group;
- ``tokens``: real access tokens from it, by username or client id;
- ``identity_service``: one real identity server, started as a process
  (:func:`running_identity`), shared by the API tests of every service.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from carenet.identity.v1 import identity_service_pb2 as identity_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as identity_grpc
from servicekit.db import make_engine
from servicekit.principals import care_group_admin
from testkit.database import fresh_database
from testkit.idp import LocalIdp
from testkit.metrics import MetricReadings, reading_domain_metrics
from testkit.processes import ServiceProcess

# A second care group, so that tenancy can be tested with real tokens.
OTHER_TENANT = "cg-noord"
EXTRA_USERS: list[dict[str, Any]] = [
    {
        "username": username,
        "enabled": True,
        "email": f"{username}@example.org",
        "firstName": username,
        "lastName": "Test",
        "realmRoles": roles,
        "attributes": {k: [v] for k, v in attributes.items()},
        "credentials": [{"type": "password", "value": "demo", "temporary": False}],
    }
    for username, roles, attributes in [
        ("dr.noord", ["gp"], {"carenet_org": "gp-noord", "carenet_tenant": OTHER_TENANT}),
        (
            "admin.noord",
            ["care-group-admin"],
            {"carenet_org": OTHER_TENANT, "carenet_tenant": OTHER_TENANT},
        ),
        (
            "pat.noord",
            ["patient"],
            {"carenet_patient": "p-noord-1", "carenet_tenant": OTHER_TENANT},
        ),
    ]
]


class Tokens:
    """Access tokens from the real issuer; users log in through the KIS or the patients' app.
    A token is kept for reuse until it is ``max_age_seconds`` old, well inside the issuer's
    lifetime (``SESSION_TOKEN_TTL``), so a long session never hands out an expired one."""

    def __init__(self, idp: LocalIdp, max_age_seconds: float = 300) -> None:
        self.idp = idp
        self.max_age = max_age_seconds
        self._cache: dict[tuple[str, str], tuple[float, str]] = {}

    def _kept(self, key: tuple[str, str], mint: Callable[[], str]) -> str:
        found = self._cache.get(key)
        if found is None or time.monotonic() - found[0] > self.max_age:
            found = self._cache[key] = (time.monotonic(), mint())
        return found[1]

    def user(self, username: str, client_id: str = "carenet-kis") -> str:
        return self._kept(
            (client_id, username), lambda: self.idp.password_token(client_id, username)
        )

    def patient(self, username: str) -> str:
        return self.user(username, "carenet-patient-app")

    def client(self, client_id: str) -> str:
        return self._kept((client_id, ""), lambda: self.idp.client_token(client_id))


SESSION_TOKEN_TTL = 900  # the test issuer's token lifetime, seconds


@pytest.fixture(scope="session")
def local_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdp]:
    keys: Path = tmp_path_factory.mktemp("idp") / "private-jwks.json"
    with LocalIdp.start(
        keys_file=keys, extra_users=EXTRA_USERS, ttl_seconds=SESSION_TOKEN_TTL
    ) as idp:
        yield idp


@pytest.fixture(scope="session")
def tokens(local_idp: LocalIdp) -> Tokens:
    return Tokens(local_idp)


@pytest.fixture
def domain_metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricReadings]:
    """The process's domain metrics, on a provider read by this test alone."""
    with reading_domain_metrics(monkeypatch) as readings:
        yield readings


def service_values(
    name: str, database_url: str, idp: LocalIdp, identity_target: str = "", **overrides: object
) -> dict[str, object]:
    """The settings of service ``name`` in a test (build its own Settings from them): its
    database, the local issuer, any free port on 127.0.0.1, and, for a service that calls
    identity, identity's target and the service's own client of the realm."""
    values: dict[str, object] = {
        "database_url": database_url,
        "oidc_issuer": idp.issuer,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
    }
    if identity_target:
        values |= {
            "identity_target": identity_target,
            "oidc_client_id": f"svc-{name}",
            "oidc_client_secret": f"svc-{name}-secret",
        }
    return values | overrides


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


IDENTITY_TEST_PEPPER = "test-pepper"
# The factory identity exposes for its use cases' dependencies over an engine, for suites
# that seed identity's data directly (IdentityService.deps). Named, not imported: testkit
# itself depends on no service.
IDENTITY_DEPS_FACTORY = "identity.main:deps_for"


class IdentityService:
    """A real identity server, running as its own process (``python -m identity.main
    serve``) on a real port, over its own fresh, migrated PostgreSQL database seeded with
    the demo region."""

    def __init__(
        self,
        target: str,
        database_url: str,
        *,
        pepper: str = IDENTITY_TEST_PEPPER,
        process: ServiceProcess | None = None,
    ) -> None:
        self.target = target
        self.database_url = database_url
        self.pepper = pepper
        self.process = process
        self._deps: Any = None
        self._engine: Any = None
        self._channel: grpc.Channel | None = None

    @property
    def deps(self) -> Any:
        """identity's use-case dependencies in this process, over the server's database (for
        suites that seed identity's data directly; identity runs as several replicas the
        same way, so what they write the server reads)."""
        if self._deps is None:
            module_name, _, name = IDENTITY_DEPS_FACTORY.partition(":")
            factory = getattr(importlib.import_module(module_name), name)
            self._engine = make_engine(self.database_url)
            self._deps = factory(self._engine, self.pepper.encode())
        return self._deps

    def register_patient(self, token: str, patient_id: str, bsn: str) -> str:
        """Registers a patient with the id ``patient_id``, then through identity's API as the
        caller of ``token`` (a clinician: identity gives the caller's practice a care
        relationship, coordinating when nobody coordinates yet); repeatable (request_id
        ``reg-<patient_id>``). Only a care group's admin chooses a patient id, so the first
        step runs as the admin of the token's care group, in this process over the server's
        database (:attr:`deps`). The patient's name."""
        care_group = str(_claims(token).get("carenet_tenant") or "")
        use_cases = importlib.import_module("identity.use_cases.patients")
        admin = care_group_admin(care_group, f"testkit-admin-{care_group}", client_id="testkit")
        use_cases.register_patient(self.deps, admin, bsn, patient_id)
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.target)
        stub = identity_grpc.IdentityServiceStub(self._channel)
        patient = stub.RegisterPatient(
            identity_rpc.RegisterPatientRequest(bsn=bsn, request_id=f"reg-{patient_id}"),
            metadata=bearer(token),
            timeout=30,
        )
        return str(patient.name)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._engine is not None:
            self._engine.dispose()


def _claims(token: str) -> dict[str, Any]:
    """The claims of a token this process fetched itself (not verified: test data only)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def valid_bsn(n: int, base: int = 600_000_000) -> str:
    """The n-th 9-digit number from ``base`` up that passes the 11-test (test data only)."""
    candidate = base + n * 100
    while True:
        digits = [int(d) for d in f"{candidate:09d}"]
        total = sum(d * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - digits[8]
        if total % 11 == 0:
            return f"{candidate:09d}"
        candidate += 1


def identity_env(local_idp: LocalIdp, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of an identity process for tests."""
    return {
        "IDENTITY_DATABASE_URL": database_url,
        "IDENTITY_OIDC_ISSUER": local_idp.issuer,
        "IDENTITY_GRPC_HOST": "127.0.0.1",
        "IDENTITY_GRPC_PORT": "0",
        "IDENTITY_BSN_PEPPER": IDENTITY_TEST_PEPPER,
        **{f"IDENTITY_{k.upper()}": v for k, v in extra.items()},
    }


def identity_command(env: Mapping[str, str], *args: str, timeout: float = 120) -> str:
    """Runs ``python -m identity.main <args>`` (e.g. ``migrate``, ``seed-demo``) with
    ``env``; its output, or an error that shows it."""
    done = subprocess.run(
        [sys.executable, "-m", "identity.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"identity {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@contextmanager
def running_identity(local_idp: LocalIdp, prefix: str = "identity") -> Iterator[IdentityService]:
    """A real identity process on a fresh, migrated, demo-seeded database of its own."""
    with fresh_database(prefix) as url:
        env = identity_env(local_idp, url)
        identity_command(env, "migrate")
        identity_command(env, "seed-demo")
        process = ServiceProcess("identity", env).start()
        service = IdentityService(process.target, url, process=process)
        try:
            yield service
        finally:
            process.stop()
            service.close()


@pytest.fixture(scope="session")
def identity_service(local_idp: LocalIdp) -> Iterator[IdentityService]:
    """The identity server the API tests of every service share."""
    with running_identity(local_idp) as service:
        yield service

"""Pytest fixtures shared by every suite (loaded from the root conftest.py).

- ``local_idp``: one real OIDC issuer (``infra/local-idp``) per test run, serving the realm
  export plus the test users of a second care group;
- ``tokens``: real access tokens from it, by username or client id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from testkit.idp import LocalIdp

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
    """Access tokens from the real issuer; users log in through the KIS or the patients' app."""

    def __init__(self, idp: LocalIdp) -> None:
        self.idp = idp
        self._cache: dict[tuple[str, str], str] = {}

    def user(self, username: str, client_id: str = "carenet-kis") -> str:
        key = (client_id, username)
        if key not in self._cache:
            self._cache[key] = self.idp.password_token(client_id, username)
        return self._cache[key]

    def patient(self, username: str) -> str:
        return self.user(username, "carenet-patient-app")

    def client(self, client_id: str) -> str:
        key = (client_id, "")
        if key not in self._cache:
            self._cache[key] = self.idp.client_token(client_id)
        return self._cache[key]


@pytest.fixture(scope="session")
def local_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdp]:
    keys: Path = tmp_path_factory.mktemp("idp") / "private-jwks.json"
    with LocalIdp.start(keys_file=keys, extra_users=EXTRA_USERS, ttl_seconds=900) as idp:
        yield idp


@pytest.fixture(scope="session")
def tokens(local_idp: LocalIdp) -> Tokens:
    return Tokens(local_idp)


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


class IdentityService:
    """A real identity server (in this process, on a real port) over its own fresh
    PostgreSQL database, seeded with the demo region."""

    def __init__(self, target: str, deps: Any, database_url: str) -> None:
        self.target = target
        self.deps = deps
        self.database_url = database_url


IDENTITY_TEST_PEPPER = "test-pepper"


@contextmanager
def running_identity(local_idp: LocalIdp, prefix: str = "identity") -> Iterator[IdentityService]:
    """A real identity server on a fresh, migrated, demo-seeded database of its own."""
    from identity import demo
    from identity.config import Settings
    from identity.main import deps_for
    from identity.server import create_server
    from servicekit.auth import verifier_for
    from servicekit.db import make_engine
    from servicekit.migrations import upgrade
    from testkit.database import fresh_database

    with fresh_database(prefix) as url:
        upgrade("identity.migrations", url)
        engine = make_engine(url)
        deps = deps_for(engine, IDENTITY_TEST_PEPPER.encode())
        demo.seed(deps)
        settings = Settings(
            database_url=url,
            oidc_issuer=local_idp.issuer,
            grpc_host="127.0.0.1",
            grpc_port=0,
            bsn_pepper=IDENTITY_TEST_PEPPER,  # type: ignore[arg-type]
        )
        running = create_server(settings, deps, verifier_for(settings))
        running.start()
        try:
            yield IdentityService(f"127.0.0.1:{running.port}", deps, url)
        finally:
            running.stop(1).wait()
            engine.dispose()


@pytest.fixture(scope="session")
def identity_service(local_idp: LocalIdp) -> Iterator[IdentityService]:
    """The identity server the API tests of every service share."""
    with running_identity(local_idp) as service:
        yield service

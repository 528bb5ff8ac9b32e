"""Fixtures for the local issuer tests: one issuer per session, started from the realm export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit.idp import LocalIdp, repo_root

REALM_FILE = repo_root(Path(__file__)) / "infra" / "keycloak" / "demo-realm.json"


def load_realm() -> dict[str, Any]:
    realm: dict[str, Any] = json.loads(REALM_FILE.read_text())
    return realm


@pytest.fixture(scope="session")
def realm() -> dict[str, Any]:
    return load_realm()


@pytest.fixture(scope="session")
def idp_keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("idp-keys") / "private-jwks.json"


@pytest.fixture(scope="session")
def local_idp(idp_keys_file: Path) -> Iterator[LocalIdp]:
    with LocalIdp.start(keys_file=idp_keys_file, realm_file=REALM_FILE) as idp:
        yield idp

"""The FHIR API as a process in front of the whole platform (the local issuer and the four
services as processes, demo data), and tokens of the clients it accepts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import requests

from testkit.platform import FrontProcess, Platform, running_fhir, running_platform


@dataclass
class FhirApi:
    base: str
    platform: Platform
    process: FrontProcess
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def token(self, client: str, user: str = "") -> str:
        """A token of ``client`` (client credentials), or of ``user`` through it."""
        key = (client, user)
        if key not in self._tokens:
            idp = self.platform.idp
            self._tokens[key] = (
                idp.password_token(client, user) if user else idp.client_token(client)
            )
        return self._tokens[key]

    def get(self, path: str, token: str | None, **params: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(f"{self.base}/{path}", headers=headers, params=params, timeout=30)

    def ok(self, path: str, token: str, **params: Any) -> dict[str, Any]:
        response = self.get(path, token, **params)
        assert response.status_code == 200, (response.status_code, response.text)
        assert response.headers["Content-Type"].startswith("application/fhir+json")
        body: dict[str, Any] = response.json()
        return body

    def channel(self, service: str) -> grpc.Channel:
        return grpc.insecure_channel(self.platform.target(service))


@pytest.fixture(scope="package")
def fhir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirApi]:
    workdir = tmp_path_factory.mktemp("fhir-platform")
    with (
        running_platform(workdir, name="fhir") as platform,
        running_fhir(platform, workers="1") as process,
    ):
        yield FhirApi(process.base, platform, process)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)

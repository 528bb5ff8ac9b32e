"""The FHIR API as a process in front of the whole platform (the local issuer and the four
services as processes, demo data), and tokens of the clients it accepts."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import requests

from testkit.platform import Platform, running_platform


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class FhirApi:
    base: str
    platform: Platform
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
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


@pytest.fixture(scope="session")
def fhir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirApi]:
    workdir = tmp_path_factory.mktemp("fhir-platform")
    with running_platform(workdir, name="fhir") as platform:
        port = _free_port()
        env = {
            **os.environ,
            "FHIR_HOST": "127.0.0.1",
            "FHIR_PORT": str(port),
            "FHIR_OIDC_ISSUER": platform.idp.issuer,
            "FHIR_WORKERS": "1",
            **platform.targets("FHIR"),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "fhir_api.main", "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        api = FhirApi(f"http://127.0.0.1:{port}/fhir/R4", platform, process)
        started: queue.Queue[int] = queue.Queue()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                api.lines.append(line.rstrip())
                if '"server_started"' in line:
                    started.put(1)

        threading.Thread(target=read, daemon=True).start()
        try:
            started.get(timeout=30)
        except queue.Empty:
            process.kill()
            raise RuntimeError("fhir did not start:\n" + "\n".join(api.lines[-40:])) from None
        try:
            yield api
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)

"""The whole platform for the browser tests: the local issuer, the four services on
PostgreSQL (fresh databases, demo data) and the web front, each as its own process, and the
system's Chromium driven by Playwright."""

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
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from testkit.database import fresh_database
from testkit.idp import LocalIdp, repo_root
from testkit.processes import ServiceProcess

REPO = repo_root(Path(__file__))
CHROMIUM = os.environ.get("CARENET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
SCREENSHOTS = REPO / "build" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def realm_for(base_url: str, target: Path) -> Path:
    """The demo realm with carenet-web's redirect URIs at this run's web address."""
    realm: dict[str, Any] = json.loads((REPO / "infra/keycloak/demo-realm.json").read_text())
    for client in realm["clients"]:
        if client["clientId"] == "carenet-web":
            client["redirectUris"] = [f"{base_url}/auth/callback"]
            client["attributes"]["post.logout.redirect.uris"] = f"{base_url}/*"
    target.write_text(json.dumps(realm))
    return target


def _cli(module: str, command: str, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", f"{module}.main", command, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{module} {command} failed:\n{result.stdout}\n{result.stderr}")
    for line in reversed(result.stdout.splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            return json.dumps(found)
    return "{}"


@dataclass
class WebProcess:
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)

    def start(self, timeout: float = 30.0) -> WebProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "web.main", "serve"],
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started: queue.Queue[int] = queue.Queue()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line.rstrip())
                if '"server_started"' in line:
                    started.put(1)

        threading.Thread(target=read, daemon=True).start()
        try:
            started.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise RuntimeError("web did not start:\n" + "\n".join(self.lines[-40:])) from None
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Platform:
    base_url: str
    idp: LocalIdp
    services: dict[str, ServiceProcess]
    web: WebProcess


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    tmp = tmp_path_factory.mktemp("web-platform")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    realm = realm_for(base_url, tmp / "realm.json")
    with (
        LocalIdp.start(keys_file=tmp / "jwks.json", realm_file=realm, ttl_seconds=600) as idp,
        fresh_database("web_identity") as identity_db,
        fresh_database("web_referral") as referral_db,
        fresh_database("web_careplan") as careplan_db,
        fresh_database("web_outcomes") as outcomes_db,
    ):
        common = {"OIDC_ISSUER": idp.issuer, "GRPC_HOST": "127.0.0.1", "GRPC_PORT": "0"}
        started: dict[str, ServiceProcess] = {}

        def env(name: str, db: str, **extra: str) -> dict[str, str]:
            prefix = name.upper()
            values = {f"{prefix}_{k}": v for k, v in common.items()} | {
                f"{prefix}_DATABASE_URL": db,
                f"{prefix}_OIDC_CLIENT_ID": f"svc-{name}",
                f"{prefix}_OIDC_CLIENT_SECRET": f"svc-{name}-secret",
            }
            values |= {f"{prefix}_{k.upper()}_TARGET": p.target for k, p in started.items()}
            return values | {f"{prefix}_{k}": v for k, v in extra.items()}

        try:
            identity_env = env("identity", identity_db, BSN_PEPPER="web-pepper")
            _cli("identity", "migrate", identity_env)
            _cli("identity", "seed-demo", identity_env)
            started["identity"] = ServiceProcess("identity", identity_env).start()
            referral_env = env("referral", referral_db, WATCH_POLL_SECONDS="0.05")
            _cli("referral", "migrate", referral_env)
            seeded = json.loads(_cli("referral", "seed-demo", referral_env, "--with-referral"))
            started["referral"] = ServiceProcess("referral", referral_env).start()
            careplan_env = env("careplan", careplan_db, CONSUMER_RETRY_SECONDS="0.2")
            _cli("careplan", "migrate", careplan_env)
            _cli("careplan", "seed-demo", careplan_env, seeded.get("referral", ""))
            started["careplan"] = ServiceProcess("careplan", careplan_env).start()
            outcomes_env = env("outcomes", outcomes_db)
            _cli("outcomes", "migrate", outcomes_env)
            _cli("outcomes", "seed-demo", outcomes_env)
            started["outcomes"] = ServiceProcess("outcomes", outcomes_env).start()
            web = WebProcess(
                {
                    "WEB_HOST": "127.0.0.1",
                    "WEB_PORT": str(port),
                    "WEB_OIDC_ISSUER": idp.issuer,
                    "WEB_OIDC_CLIENT_SECRET": "carenet-web-secret",
                    "WEB_SECRET_KEY": "web-test-secret-key-0123456789abcdef",
                    "WEB_SESSION_DIR": str(tmp / "sessions"),
                    "WEB_SECURE_COOKIES": "false",
                    "WEB_WORKERS": "1",
                    "WEB_LOG_LEVEL": "INFO",
                    **{f"WEB_{k.upper()}_TARGET": p.target for k, p in started.items()},
                }
            ).start()
            try:
                yield Platform(base_url, idp, started, web)
            finally:
                web.stop()
        finally:
            for process in reversed(list(started.values())):
                process.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    found = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield found
    found.close()


@pytest.fixture
def context(browser: Browser, platform: Platform) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=platform.base_url, viewport=DESKTOP, locale="nl-NL")
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure, a screenshot of every page the test had open (build/screenshots/failed-*)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    running = funcargs.get("platform")
    if running is not None:
        log = "\n".join(running.web.lines[-200:])
        (SCREENSHOTS / f"failed-{item.name}-web.log").write_text(log)
    ctx = funcargs.get("context")
    if ctx is None:
        return
    for index, open_page in enumerate(ctx.pages):
        try:
            open_page.screenshot(
                path=str(SCREENSHOTS / f"failed-{item.name}-{index}.png"), full_page=True
            )
        except Exception:  # noqa: S112 -- best effort
            continue

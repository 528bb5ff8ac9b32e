"""The whole platform for the browser tests: the local issuer, the four services on
PostgreSQL (fresh databases, demo data) and the web front, each as its own process, and the
system's Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
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

from testkit.idp import LocalIdp, repo_root
from testkit.platform import FrontProcess, free_port, running_front, running_platform
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


def realm_for(base_url: str, target: Path) -> Path:
    """The demo realm with carenet-web's redirect URIs at this run's web address."""
    realm: dict[str, Any] = json.loads((REPO / "infra/keycloak/demo-realm.json").read_text())
    for client in realm["clients"]:
        if client["clientId"] == "carenet-web":
            client["redirectUris"] = [f"{base_url}/auth/callback"]
            client["attributes"]["post.logout.redirect.uris"] = f"{base_url}/*"
    target.write_text(json.dumps(realm))
    return target


@dataclass
class Platform:
    base_url: str
    idp: LocalIdp
    services: dict[str, ServiceProcess]
    web: FrontProcess


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    tmp = tmp_path_factory.mktemp("web-platform")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    realm = realm_for(base_url, tmp / "realm.json")
    with (
        running_platform(tmp, name="web", realm_file=realm) as services,
        running_front(
            "web.main",
            "WEB",
            services,
            {
                "oidc_client_secret": "carenet-web-secret",
                "secret_key": "web-test-secret-key-0123456789abcdef",
                "session_dir": str(tmp / "sessions"),
                "secure_cookies": "false",
                "workers": "1",
                "log_level": "INFO",
            },
            port=port,
        ) as web,
    ):
        yield Platform(base_url, services.idp, services.services, web)


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

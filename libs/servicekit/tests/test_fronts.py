"""servicekit.fronts: the settings and the serving every HTTP front shares."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_settings import SettingsConfigDict

from servicekit import channels, fronts


class Settings(fronts.FrontSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", extra="ignore", frozen=True)

    port: int = 8123


def test_a_fronts_settings_are_read_under_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "EXAMPLE_OIDC_ISSUER": "http://idp/realms/carenet",
        "EXAMPLE_IDENTITY_TARGET": "identity:1",
        "EXAMPLE_REFERRAL_TARGET": "referral:2",
        "EXAMPLE_CAREPLAN_TARGET": "careplan:3",
        "EXAMPLE_OUTCOMES_TARGET": "outcomes:4",
        "EXAMPLE_THREADS": "3",
        "WEB_THREADS": "99",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # type: ignore[call-arg]
    assert (settings.port, settings.threads, settings.workers) == (8123, 3, 2)
    assert settings.outcomes_target == "outcomes:4"
    assert settings.public_url == ""


def test_a_front_is_prepared_then_served_with_its_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(channels, "_settings_prefix", [])
    served: dict[str, Any] = {}
    monkeypatch.setattr(fronts, "serve_wsgi", lambda app, **kw: served.update(app=app, **kw))
    monkeypatch.setattr(fronts, "configure_tracing", lambda name: None)
    settings = Settings(
        oidc_issuer="http://idp/realms/carenet",
        identity_target="i",
        referral_target="r",
        careplan_target="c",
        outcomes_target="o",
    )
    prepared: list[object] = []
    fronts.serve_front("example", settings, lambda: "the app", prepare=prepared.append)
    assert prepared == ["the app"]
    assert served == {
        "app": "the app",
        "service": "example",
        "host": "127.0.0.1",
        "port": 8123,
        "workers": 2,
        "threads": 8,
        "log_level": "INFO",
    }
    assert channels._settings_prefix == ["EXAMPLE_"]

"""servicekit.cli: one command line for every service."""

from __future__ import annotations

import pytest

from servicekit.cli import service_cli
from servicekit.config import ServiceSettings


class Settings(ServiceSettings):
    pass


def _settings() -> Settings:
    return Settings(
        database_url="postgresql+psycopg://x/y",
        oidc_issuer="http://127.0.0.1:9/realms/carenet",
        oidc_audience="carenet-example",
    )


def test_serve_and_own_commands_get_the_settings_and_their_arguments() -> None:
    seen: list[tuple[str, object]] = []
    main = service_cli(
        "example",
        _settings,
        lambda s: seen.append(("serve", s.oidc_audience)),
        extra={"seed-demo": lambda s, args: seen.append(("seed-demo", args))},
    )
    main(["serve"])
    main(["seed-demo", "--with-referral"])
    assert seen == [("serve", "carenet-example"), ("seed-demo", ["--with-referral"])]


def test_migrate_upgrades_the_services_own_migrations(monkeypatch: pytest.MonkeyPatch) -> None:
    upgraded: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "servicekit.migrations.upgrade", lambda package, url: upgraded.append((package, url))
    )
    service_cli("example", _settings, lambda s: None)(["migrate"])
    assert upgraded == [("example.migrations", "postgresql+psycopg://x/y")]


def test_unknown_arguments_to_serve_are_refused() -> None:
    with pytest.raises(SystemExit) as exit_:
        service_cli("example", _settings, lambda s: None)(["serve", "--nope"])
    assert exit_.value.code == 2

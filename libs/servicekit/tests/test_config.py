"""A service's Settings names only its env_prefix: the rest of ServiceSettings' model_config
(unknown variables ignored, frozen) holds for it too."""

from __future__ import annotations

import pydantic
import pytest
from pydantic_settings import SettingsConfigDict

from servicekit.config import ServiceSettings


class _Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SVCTEST_")

    own_setting: int = 1


def test_a_service_settings_reads_its_prefix_ignores_others_and_is_frozen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SVCTEST_DATABASE_URL", "postgresql+psycopg://db/x")
    monkeypatch.setenv("SVCTEST_OIDC_ISSUER", "https://issuer.example")
    monkeypatch.setenv("SVCTEST_OIDC_AUDIENCE", "svc")
    monkeypatch.setenv("SVCTEST_OWN_SETTING", "7")
    monkeypatch.setenv("SVCTEST_NO_SUCH_SETTING", "x")
    settings = _Settings()  # type: ignore[call-arg]  # from the environment
    assert (settings.database_url, settings.own_setting) == ("postgresql+psycopg://db/x", 7)
    with pytest.raises(pydantic.ValidationError):
        settings.own_setting = 2

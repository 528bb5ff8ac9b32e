"""The web front's test application: no service answers at its targets (the pages that
need one are tested against the real services elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from web.app import create_app
from web.config import Settings


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    settings = Settings(
        oidc_issuer="http://127.0.0.1:9/realms/carenet",
        oidc_client_secret="s",  # type: ignore[arg-type]
        identity_target="127.0.0.1:9",
        referral_target="127.0.0.1:9",
        careplan_target="127.0.0.1:9",
        outcomes_target="127.0.0.1:9",
        secret_key="k" * 32,  # type: ignore[arg-type]
        session_dir=str(tmp_path / "sessions"),
        secure_cookies=False,
        call_deadline_seconds=1,
    )
    application = create_app(settings)
    yield application
    application.extensions["carenet_channels"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()

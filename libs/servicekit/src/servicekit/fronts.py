"""What the HTTP fronts (the web front and the FHIR API) share: the settings every front
reads (its address, the issuer, the four services' targets, gunicorn's workers and threads)
and ``serve_front``, which configures logging, channels and tracing and serves the Flask
application with :func:`servicekit.wsgi.serve_wsgi`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.channels import use_settings_prefix
from servicekit.logs import configure_logging
from servicekit.telemetry import configure_tracing
from servicekit.wsgi import serve_wsgi

App = TypeVar("App")


class FrontSettings(BaseSettings):
    """A front's settings; a front names its ``env_prefix`` (``WEB_``) and its port."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int
    # The issuer (Keycloak realm URL), e.g. https://keycloak.example/realms/carenet.
    oidc_issuer: str
    identity_target: str
    referral_target: str
    careplan_target: str
    outcomes_target: str
    call_deadline_seconds: float = 5.0
    # The public base URL of the front (no trailing slash); links and redirect URIs are
    # built from it. Empty: from the request (local runs).
    public_url: str = ""
    workers: int = 2
    threads: int = 8
    log_level: str = "INFO"


def serve_front(
    name: str,
    settings: FrontSettings,
    create_app: Callable[[], App],
    *,
    prepare: Callable[[App], Any] | None = None,
) -> None:
    """Serve front ``name``: logging, the channels' settings (the front's env prefix) and
    tracing first, then ``create_app()``, ``prepare(app)`` if given, and gunicorn."""
    configure_logging(name, settings.log_level)
    use_settings_prefix(str(settings.model_config.get("env_prefix", "")))
    configure_tracing(name)
    app = create_app()
    if prepare is not None:
        prepare(app)
    serve_wsgi(
        app,
        service=name,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        threads=settings.threads,
        log_level=settings.log_level,
    )

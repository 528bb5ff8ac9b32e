"""Composition root of the FHIR API: ``fhir-api serve`` reads the settings and serves the
Flask application with gunicorn (threads), printing one JSON line ``{"event":
"server_started", "port": N}`` once it listens."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from gunicorn.app.base import BaseApplication
from opentelemetry.instrumentation.flask import FlaskInstrumentor

from fhir_api.app import create_app
from fhir_api.config import Settings
from servicekit.channels import use_settings_prefix
from servicekit.logs import configure_logging
from servicekit.telemetry import configure_tracing, tracing_configured

log = logging.getLogger("fhir")


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.application


def _when_ready(server: Any) -> None:
    port = server.LISTENERS[0].sock.getsockname()[1]
    print(json.dumps({"event": "server_started", "service": "fhir", "port": port}), flush=True)


def serve(settings: Settings) -> None:
    configure_logging("fhir", settings.log_level)
    use_settings_prefix("FHIR_")
    configure_tracing("fhir")
    app = create_app(settings)
    if tracing_configured():  # without a tracer provider, server spans only cost time
        FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz")  # type: ignore[no-untyped-call]
    options = {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "worker_class": "gthread",
        "threads": settings.threads,
        "when_ready": _when_ready,
        "accesslog": None,  # a URL path names a patient id: no access log of paths
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "graceful_timeout": 10,
        "timeout": 60,
        "control_socket_disable": True,
    }
    _Gunicorn(app, options).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fhir-api", description="carenet FHIR R4 API")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the API")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(Settings())  # type: ignore[call-arg]  # from the environment
    return 0


if __name__ == "__main__":
    sys.exit(main())

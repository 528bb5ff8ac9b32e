"""Composition root of the FHIR API: ``fhir-api serve`` reads the settings and serves the
Flask application with gunicorn (threads), printing one JSON line ``{"event":
"server_started", "port": N}`` once it listens."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from opentelemetry.instrumentation.flask import FlaskInstrumentor

from fhir_api.app import create_app
from fhir_api.config import Settings
from servicekit.channels import use_settings_prefix
from servicekit.logs import configure_logging
from servicekit.telemetry import configure_tracing, tracing_configured
from servicekit.wsgi import serve_wsgi

log = logging.getLogger("fhir")


def serve(settings: Settings) -> None:
    configure_logging("fhir", settings.log_level)
    use_settings_prefix("FHIR_")
    configure_tracing("fhir")
    app = create_app(settings)
    if tracing_configured():  # without a tracer provider, server spans only cost time
        FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz")  # type: ignore[no-untyped-call]
    serve_wsgi(
        app,
        service="fhir",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        threads=settings.threads,
        log_level=settings.log_level,
    )


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

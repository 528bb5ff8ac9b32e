"""Composition root of the FHIR API: ``fhir-api serve`` reads the settings and serves the
Flask application with gunicorn (threads), printing one JSON line ``{"event":
"server_started", "port": N}`` once it listens."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from flask import Flask
from opentelemetry.instrumentation.flask import FlaskInstrumentor

from fhir_api.app import create_app
from fhir_api.config import Settings
from servicekit.fronts import serve_front
from servicekit.telemetry import tracing_configured

log = logging.getLogger("fhir")


def _instrument(app: Flask) -> None:
    if tracing_configured():  # without a tracer provider, server spans only cost time
        FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz")  # type: ignore[no-untyped-call]


def serve(settings: Settings) -> None:
    serve_front("fhir", settings, lambda: create_app(settings), prepare=_instrument)


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

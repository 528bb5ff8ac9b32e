"""Composition root of the web front: ``web serve`` reads the settings and serves the Flask
application with gunicorn (threads), printing one JSON line ``{"event": "server_started",
"port": N}`` once it listens."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from servicekit.fronts import serve_front
from web.app import create_app
from web.config import Settings

log = logging.getLogger("web")


def serve(settings: Settings) -> None:
    serve_front("web", settings, lambda: create_app(settings))


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["serve"]:
        sys.stderr.write("usage: web serve\n")
        raise SystemExit(2)
    serve(Settings())  # type: ignore[call-arg]


if __name__ == "__main__":
    main()

"""Composition root of the web front: ``web serve`` reads the settings and serves the Flask
application with gunicorn (threads), printing one JSON line ``{"event": "server_started",
"port": N}`` once it listens."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from gunicorn.app.base import BaseApplication

from servicekit.channels import use_settings_prefix
from servicekit.logs import configure_logging
from servicekit.telemetry import configure_tracing
from web.app import create_app
from web.config import Settings

log = logging.getLogger("web")


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
    print(json.dumps({"event": "server_started", "service": "web", "port": port}), flush=True)


def serve(settings: Settings) -> None:
    configure_logging("web", settings.log_level)
    use_settings_prefix("WEB_")
    configure_tracing("web")
    app = create_app(settings)
    options = {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "worker_class": "gthread",
        "threads": settings.threads,
        "when_ready": _when_ready,
        "accesslog": None,  # a URL path may name a patient id: no access log of paths
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "graceful_timeout": 10,
        "timeout": 60,
        "preload_app": False,
        "control_socket_disable": True,  # no runtime control socket in the home folder
    }
    _Gunicorn(app, options).run()


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["serve"]:
        sys.stderr.write("usage: web serve\n")
        raise SystemExit(2)
    serve(Settings())  # type: ignore[call-arg]


if __name__ == "__main__":
    main()

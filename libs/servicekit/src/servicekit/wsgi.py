"""Serving the platform's HTTP fronts (the web pages, the FHIR API) with gunicorn's threaded
workers, the way the gRPC services are served: one JSON line ``{"event": "server_started",
"service": ..., "port": N}`` on stdout once it listens, no access log of URL paths (a path
may name a patient), no control socket in the home folder."""

from __future__ import annotations

import json
from typing import Any


def serve_wsgi(
    app: Any,
    *,
    service: str,
    host: str,
    port: int,
    workers: int,
    threads: int,
    log_level: str,
    graceful_seconds: int = 10,
) -> None:
    """Serve ``app`` until stopped (SIGTERM: gunicorn's graceful stop). gunicorn is a
    dependency of the fronts that call this, not of every service."""
    from gunicorn.app.base import BaseApplication

    def when_ready(server: Any) -> None:
        bound = server.LISTENERS[0].sock.getsockname()[1]
        print(
            json.dumps({"event": "server_started", "service": service, "port": bound}), flush=True
        )

    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "when_ready": when_ready,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": log_level.lower(),
        "graceful_timeout": graceful_seconds,
        "timeout": 60,
        "preload_app": False,
        "control_socket_disable": True,
    }

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    _Gunicorn().run()

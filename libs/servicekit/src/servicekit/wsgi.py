"""Serving the platform's HTTP fronts (the web pages, the FHIR API) with gunicorn's threaded
workers, the way the gRPC services are served: one JSON line ``{"event": "server_started",
"service": ..., "port": N}`` on stdout once it listens, no access log of URL paths (a path
may name a patient), no control socket in the home folder.

The worker is gunicorn's threaded worker with two changes (:func:`_lingering_worker`). The
thread that answered a request on a kept-alive connection waits a moment for that
connection's next request and serves it itself, instead of handing the connection back to
the worker's poller, which hands it to a thread again when the next request comes. Those two
hand-overs between threads cost about 0.4 ms of CPU and as much latency per request, more
than a small request's own work. And it reads its settings through :class:`SettledConfig`,
which looks each one up once.
"""

from __future__ import annotations

import json
import select
import threading
from typing import Any

#: How long a thread that answered a request on a kept-alive connection waits for the next
#: request on it (a client sending its requests one after another sends the next within a
#: millisecond or so). After that the connection waits in the worker's poller as usual.
KEEPALIVE_LINGER_SECONDS = 0.005


def _next_request_ready(conn: Any, seconds: float) -> bool:
    """Whether ``conn`` (gunicorn's connection) has its next request's first bytes, waiting
    up to ``seconds`` for them."""
    if conn.parser.unreader.buf.getvalue():  # already read with the previous request
        return True
    pending = getattr(conn.sock, "pending", None)  # TLS: bytes decrypted but not read
    if pending is not None and pending():
        return True
    poll = select.poll()
    poll.register(conn.sock, select.POLLIN)
    return bool(poll.poll(seconds * 1000))


class SettledConfig:
    """A worker's gunicorn configuration with each value looked up once, then kept as a
    plain attribute. gunicorn reads about two dozen settings per request, each through
    ``Config.__getattr__`` and the setting's ``get`` (about an eighth of a small request's
    CPU); in a worker they no longer change (a reload starts new workers). Setting a value
    goes to the configuration itself, which refuses settings as before."""

    def __init__(self, cfg: Any) -> None:
        object.__setattr__(self, "_cfg", cfg)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._cfg, name)  # AttributeError for an unknown name, as before
        object.__setattr__(self, name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._cfg, name, value)
        self.__dict__.pop(name, None)


def _lingering_worker(linger_seconds: float) -> type:
    """gunicorn's threaded worker whose threads serve a kept-alive connection's next request
    themselves when it comes within ``linger_seconds``, as long as another thread stays free
    for new connections and for connections coming back from the poller."""
    from gunicorn.workers.gthread import ThreadWorker

    class LingeringThreadWorker(ThreadWorker):  # type: ignore[misc]
        def init_process(self) -> None:
            self.cfg: Any = SettledConfig(self.cfg)
            self._busy = 0
            self._busy_lock = threading.Lock()
            super().init_process()

        def _may_linger(self) -> bool:
            # this thread counts as busy: at least one other thread must be free
            return self.alive and self._busy < self.cfg.threads  # type: ignore[no-any-return]

        def handle(self, conn: Any) -> Any:
            with self._busy_lock:
                self._busy += 1
            try:
                # True: the connection is kept alive (False: closed; or not yet readable)
                keep = super().handle(conn)
                while (
                    keep is True
                    and self._may_linger()
                    and _next_request_ready(conn, linger_seconds)
                ):
                    keep = super().handle(conn)
                return keep
            finally:
                with self._busy_lock:
                    self._busy -= 1

    return LingeringThreadWorker


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
    linger_seconds: float = KEEPALIVE_LINGER_SECONDS,
) -> None:
    """Serve ``app`` until stopped (SIGTERM: gunicorn's graceful stop). gunicorn is a
    dependency of the fronts that call this, not of every service. ``linger_seconds`` 0:
    gunicorn's threaded worker unchanged."""
    from gunicorn.app.base import BaseApplication

    def when_ready(server: Any) -> None:
        bound = server.LISTENERS[0].sock.getsockname()[1]
        print(
            json.dumps({"event": "server_started", "service": service, "port": bound}), flush=True
        )

    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": _lingering_worker(linger_seconds) if linger_seconds > 0 else "gthread",
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

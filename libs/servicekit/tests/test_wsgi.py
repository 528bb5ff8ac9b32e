"""servicekit.wsgi served for real (gunicorn in a child process, one worker, two threads): a
kept-alive connection's requests are answered in order by the thread that lingers for them,
pipelined requests are not lost, a thread lingering never keeps other connections waiting,
and SIGTERM stops the server."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

SERVER = textwrap.dedent(
    """
    import time
    from servicekit.wsgi import serve_wsgi

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path.startswith("/slow"):
            time.sleep(0.3)
        body = path.encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    serve_wsgi(app, service="example", host="127.0.0.1", port=0, workers=1, threads=2,
               log_level="WARNING", graceful_seconds=2)
    """
)


@contextlib.contextmanager
def _serving() -> Iterator[tuple[subprocess.Popen[str], int]]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    started = json.loads(process.stdout.readline())
    assert started["event"] == "server_started"
    try:
        yield process, int(started["port"])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[subprocess.Popen[str], int]]:
    with _serving() as serving:
        yield serving


def _get(conn: http.client.HTTPConnection, path: str) -> str:
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.status == 200
    return response.read().decode()


def test_a_kept_alive_connections_requests_are_answered_in_order(
    server: tuple[subprocess.Popen[str], int],
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server[1], timeout=5)
    try:
        assert [_get(conn, f"/n/{i}") for i in range(300)] == [f"/n/{i}" for i in range(300)]
        time.sleep(0.05)  # past the linger: the connection waits in the poller, then goes on
        assert _get(conn, "/after-a-pause") == "/after-a-pause"
    finally:
        conn.close()


def test_pipelined_requests_are_each_answered(server: tuple[subprocess.Popen[str], int]) -> None:
    with socket.create_connection(("127.0.0.1", server[1]), timeout=5) as sock:
        sock.sendall(
            b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        received = b""
        deadline = time.monotonic() + 5
        # Both answers whole: a header may come in one segment and its body in the next.
        while not received.endswith(b"\r\n\r\n/second") and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.count(b"HTTP/1.1 200") == 2
    assert b"\r\n\r\n/first" in received
    assert received.index(b"\r\n\r\n/first") < received.index(b"\r\n\r\n/second")


def test_lingering_threads_never_keep_other_connections_waiting(
    server: tuple[subprocess.Popen[str], int],
) -> None:
    """Two threads: one busy with a slow request, and a client sending requests one after
    another on its kept-alive connection. Other new connections are still answered."""
    port = server[1]
    errors: list[BaseException] = []
    stop = threading.Event()

    def busy_client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            while not stop.is_set():
                _get(conn, "/busy")
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            conn.close()

    slow = threading.Thread(
        target=lambda: _get(http.client.HTTPConnection("127.0.0.1", port, timeout=5), "/slow")
    )
    busy = threading.Thread(target=busy_client)
    slow.start()
    busy.start()
    try:
        time.sleep(0.05)
        started = time.monotonic()
        for i in range(10):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                assert _get(conn, f"/other/{i}") == f"/other/{i}"
            finally:
                conn.close()
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        busy.join(10)
        slow.join(10)
    assert errors == []


def test_sigterm_stops_the_server() -> None:
    with _serving() as (process, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        assert _get(conn, "/before-stop") == "/before-stop"
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        conn.close()


def test_a_workers_settings_are_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from gunicorn.config import Config
    from gunicorn.workers.gthread import ThreadWorker

    from servicekit.wsgi import SettledConfig, _lingering_worker

    config = Config()
    config.set("keepalive", 7)
    lookups: list[str] = []
    setting = config.settings["keepalive"]
    original_get = setting.get

    def counted_get() -> object:
        lookups.append("keepalive")
        return original_get()

    monkeypatch.setattr(setting, "get", counted_get)
    settled = SettledConfig(config)
    assert [settled.keepalive, settled.keepalive, settled.keepalive] == [7, 7, 7]
    assert lookups == ["keepalive"]
    assert settled.is_ssl is config.is_ssl and settled.threads == config.threads
    with pytest.raises(AttributeError):
        settled.no_such_setting  # noqa: B018
    with pytest.raises(AttributeError):
        settled.keepalive = 1  # Config refuses setting a setting
    assert settled.keepalive == 7

    # the lingering worker reads its settings through it from the start
    monkeypatch.setattr(ThreadWorker, "init_process", lambda self: None)
    worker_class: Any = _lingering_worker(0.005)
    worker = worker_class.__new__(worker_class)
    worker.cfg = config
    worker.init_process()
    assert isinstance(worker.cfg, SettledConfig)
    assert worker.cfg.keepalive == 7

"""Services as real processes, for end-to-end tests: start, wait for SERVING, stop."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


@dataclass
class ServiceProcess:
    """``python -m <name>.main serve`` with ``env``. Its output is kept in ``lines``; with
    ``log_file`` it is written to that file as it comes, and only the last MAX_LINES are
    kept in memory."""

    MAX_LINES = 5000

    name: str
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    port: int = 0
    lines: list[str] = field(default_factory=list)
    log_file: Path | None = None
    _log: IO[str] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        env = {**os.environ, **self.env}
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_file.open("a", encoding="utf-8", buffering=1)
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"{self.name}.main", "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found: queue.Queue[int] = queue.Queue()
        threading.Thread(target=self._read, args=(found,), daemon=True).start()
        try:
            self.port = found.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise RuntimeError(
                f"{self.name} did not start:\n" + "\n".join(self.lines[-40:])
            ) from None
        wait_serving(self.ready_target(), timeout=timeout)
        return self

    def ready_target(self) -> str:
        """Where readiness is read (plaintext health): the gRPC port itself by default."""
        return self.target

    def _read(self, found: queue.Queue[int]) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        started = False
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if self._log is not None:
                self._log.write(line)
                if len(self.lines) > self.MAX_LINES:
                    del self.lines[: len(self.lines) - self.MAX_LINES]
            # only until the port is known: a busy service writes thousands of lines a
            # second, and decoding each would hold the GIL of the process that reads them
            if started or "server_started" not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "server_started":
                found.put(int(event["port"]))
                started = True

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            if self._log is not None:
                # what the process wrote while stopping reaches the file before it closes
                self._log.flush()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def wait_serving(target: str, timeout: float = 30.0, service: str = "") -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{target} not SERVING after {timeout}s")
            time.sleep(0.1)


def service_env(prefix: str, values: Mapping[str, str]) -> dict[str, str]:
    return {f"{prefix.upper()}_{k.upper()}": v for k, v in values.items()}

"""``create_server``: one gRPC server shape for every service.

The server carries the call interceptor (authentication, the on-behalf-of rule and the
person a delegate acts for, errors, page-token key) on every method, the OpenTelemetry
interceptor outside it when a tracer provider is configured, the library health servicer
and reflection. Every method's request deserializer is wrapped (servicekit.decoding), so
that an undecodable body answers INVALID_ARGUMENT ``MALFORMED_REQUEST`` with a
``google.rpc.Status`` like any other error, instead of grpc's bare INTERNAL, and a NUL
character in any string of a request is INVALID_ARGUMENT ``INVALID_CHARACTERS`` naming the
field. :func:`serve` marks it SERVING, and on SIGTERM or SIGINT marks it NOT_SERVING and
stops it with a grace period.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import server_interceptor

from servicekit.auth import TokenVerifier
from servicekit.delegation import Delegations
from servicekit.interceptors import CallInterceptor
from servicekit.telemetry import tracing_configured

log = logging.getLogger("servicekit.server")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    service_names: tuple[str, ...]

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.service_names):
            self.health.set(name, status)

    def start(self) -> None:
        self.server.start()
        self.set_serving(True)
        log.info("server_started", extra={"port": self.port, "services": list(self.service_names)})

    def stop(self, grace: float) -> threading.Event:
        self.set_serving(False)
        event: threading.Event = self.server.stop(grace)
        return event


def create_server(
    *,
    host: str,
    port: int,
    domain: str,
    service_names: Sequence[str],
    register: Callable[[grpc.Server], None],
    verifier: TokenVerifier | None,
    max_workers: int = 32,
    page_token_key: str | bytes = b"",
    delegations: Delegations | None = None,
    own_string_checks: Sequence[str] = (),
) -> RunningServer:
    """Builds (but does not start) a server; ``port`` 0 picks a free port.

    ``page_token_key`` is the HMAC key of the service's page tokens (its
    ``<SVC>_PAGE_TOKEN_KEY``; servicekit.paging); empty: a random key for this process.
    ``delegations`` resolves the person a delegate acts for before every call
    (servicekit.delegation): every service but identity (which resolves in its servicer)
    passes an :class:`~servicekit.delegation.IdentityDelegations`; without it a delegated
    call keeps the client's own roles. ``own_string_checks`` names request messages (full
    names) whose service checks every string itself, row by row (servicekit.decoding).
    """
    key = page_token_key.encode() if isinstance(page_token_key, str) else page_token_key
    interceptors: list[grpc.ServerInterceptor] = [
        CallInterceptor(
            domain,
            verifier,
            page_token_key=key or None,
            delegations=delegations,
            own_string_checks=own_string_checks,
        )
    ]
    if tracing_configured():
        interceptors.insert(0, server_interceptor())  # type: ignore[no-untyped-call]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=domain),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=max_workers * 4,
    )
    register(server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not bind {host}:{port}")
    running = RunningServer(server, bound, health_servicer, tuple(service_names))
    running.set_serving(False)
    return running


def serve(running: RunningServer, grace_seconds: float) -> None:
    """Starts the server and blocks until SIGTERM or SIGINT has stopped it."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("server_stopping", extra={"signal": signal.Signals(signum).name})
        running.stop(grace_seconds)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running.start()
    running.server.wait_for_termination()
    log.info("server_stopped")

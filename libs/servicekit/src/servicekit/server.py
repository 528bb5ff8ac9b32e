"""``create_server``: one gRPC server shape for every service.

The server carries the call interceptor (authentication, the on-behalf-of rule and the
person a delegate acts for, errors, page-token key, RPC metrics) on every method, the OpenTelemetry
interceptor outside it when a tracer provider is configured, the library health servicer
and reflection. Every method's request deserializer is wrapped (servicekit.decoding), so
that an undecodable body answers INVALID_ARGUMENT ``MALFORMED_REQUEST`` with a
``google.rpc.Status`` like any other error, instead of grpc's bare INTERNAL, and a NUL
character in any string of a request is INVALID_ARGUMENT ``INVALID_CHARACTERS`` naming the
field.

Transport settings every service shares are read from the service's environment prefix
(the first label of its error domain: ``identity.carenet`` reads ``IDENTITY_*``) into
:class:`ServerSettings`: TLS files (servicekit.tls), the drain period, and the maximum
connection age (so that clients balancing over a headless Service re-resolve and spread
over new pods).

Stopping (:func:`serve`, on SIGTERM or SIGINT) drains first: health turns NOT_SERVING for
every service name while calls are still served, for ``DRAIN_SECONDS`` (set it to the
readiness probe's period times its failure threshold, so the endpoint is gone before calls
are refused); then open server streams end with UNAVAILABLE ``SERVER_DRAINING`` (their
consumers resume from their cursor on another pod); then the server stops, letting calls in
flight finish within the grace period. A second signal skips what is left of the drain.
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
from opentelemetry.instrumentation.grpc import filters, server_interceptor
from opentelemetry.metrics import MeterProvider
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit import channels, tls
from servicekit.auth import TokenVerifier
from servicekit.delegation import Delegations
from servicekit.interceptors import PUBLIC_PREFIXES, CallInterceptor
from servicekit.metrics import RpcMetrics, metrics_recorded
from servicekit.telemetry import tracing_configured

log = logging.getLogger("servicekit.server")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class ServerSettings(BaseSettings):
    """How a service's server listens and stops; read from ``<SERVICE>_*`` variables."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # TLS (servicekit.tls): PEM files of the server's certificate (chain) and key; with both
    # set the port serves TLS only. With a client CA too, mutual TLS: a client must present
    # a certificate signed by that CA.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # A second, plaintext port serving only grpc.health.v1.Health (0: none), for the
    # kubelet's gRPC probes, which cannot speak TLS.
    health_port: int = 0
    # Seconds health reports NOT_SERVING while calls are still served, before streams end
    # and the server stops (the readiness probe's period times its failure threshold).
    drain_seconds: float = 0.0
    # Seconds after which a connection is closed (GOAWAY) so clients reconnect and spread
    # over the pods the headless Service lists now; 0: never. Calls in flight then get
    # max_connection_age_grace_seconds to finish.
    max_connection_age_seconds: float = 0.0
    max_connection_age_grace_seconds: float = 30.0

    @classmethod
    def for_service(cls, prefix: str) -> ServerSettings:
        return cls(_env_prefix=prefix)  # type: ignore[call-arg]

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file or self.tls_key_file)


#: The shortest interval between pings a server accepts (below the channels' keepalive).
MIN_PING_INTERVAL_MS = 10_000


def env_prefix(domain: str) -> str:
    """``identity.carenet`` -> ``IDENTITY_``: the environment prefix of a service."""
    return domain.split(".", 1)[0].upper() + "_"


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    service_names: tuple[str, ...]
    draining: threading.Event
    settings: ServerSettings
    health_server: grpc.Server | None = None

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
        if self.health_server is not None:
            self.health_server.start()
        self.set_serving(True)
        log.info("server_started", extra={"port": self.port, "services": list(self.service_names)})

    def stop(self, grace: float) -> threading.Event:
        """NOT_SERVING, server streams end (UNAVAILABLE ``SERVER_DRAINING``), then the
        server stops with ``grace`` seconds for calls in flight. No drain pause: see
        :meth:`shutdown`."""
        self.set_serving(False)
        self.draining.set()
        event: threading.Event = self.server.stop(grace)
        if self.health_server is not None:
            self.health_server.stop(0)
        return event

    def shutdown(
        self, drain_seconds: float, grace: float, hurry: threading.Event | None = None
    ) -> None:
        """Drain, then stop and wait: NOT_SERVING for ``drain_seconds`` (cut short when
        ``hurry`` is set) while calls are still served, then :meth:`stop`."""
        self.set_serving(False)
        log.info("server_draining", extra={"drain_seconds": drain_seconds})
        if drain_seconds > 0:
            (hurry or threading.Event()).wait(drain_seconds)
        self.stop(grace).wait()


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
    settings: ServerSettings | None = None,
    meter_provider: MeterProvider | None = None,
) -> RunningServer:
    """Builds (but does not start) a server; ``port`` 0 picks a free port.

    ``page_token_key`` is the HMAC key of the service's page tokens (its
    ``<SVC>_PAGE_TOKEN_KEY``; servicekit.paging); empty: a random key for this process.
    ``delegations`` resolves the person a delegate acts for before every call
    (servicekit.delegation): every service but identity (which resolves in its servicer)
    passes an :class:`~servicekit.delegation.IdentityDelegations`; without it a delegated
    call keeps the client's own roles. ``own_string_checks`` names request messages (full
    names) whose service checks every string itself, row by row (servicekit.decoding).
    ``settings`` defaults to the :class:`ServerSettings` of the service's environment
    prefix (:func:`env_prefix` of ``domain``). RPC metrics (servicekit.metrics) go to
    ``meter_provider``, by default the global one when it is an SDK provider (installed
    before the server is built, by servicekit.telemetry or ``opentelemetry-instrument``);
    otherwise calls are not measured at all, which costs nothing.
    """
    prefix = env_prefix(domain)
    settings = settings or ServerSettings.for_service(prefix)
    channels.use_settings_prefix(prefix)
    key = page_token_key.encode() if isinstance(page_token_key, str) else page_token_key
    draining = threading.Event()
    interceptors: list[grpc.ServerInterceptor] = [
        CallInterceptor(
            domain,
            verifier,
            page_token_key=key or None,
            delegations=delegations,
            own_string_checks=own_string_checks,
            draining=draining,
            rpc_metrics=RpcMetrics(meter_provider) if metrics_recorded(meter_provider) else None,
        )
    ]
    if tracing_configured():
        # Health checks and reflection make no spans.
        interceptors.insert(0, server_interceptor(filter_=_not_public()))  # type: ignore[no-untyped-call]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=domain),
        interceptors=interceptors,
        options=transport_options(settings),
        maximum_concurrent_rpcs=max_workers * 4,
    )
    register(server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{host}:{port}"
    if settings.tls:
        credentials = tls.server_credentials(
            settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
        )
        bound = server.add_secure_port(address, credentials)
    else:
        bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"could not bind {address}")
    health_server = None
    if settings.health_port:
        health_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
        if health_server.add_insecure_port(f"{host}:{settings.health_port}") == 0:
            raise OSError(f"could not bind {host}:{settings.health_port}")
    running = RunningServer(
        server, bound, health_servicer, tuple(service_names), draining, settings, health_server
    )
    running.set_serving(False)
    return running


def transport_options(settings: ServerSettings) -> list[tuple[str, int]]:
    """The server's channel arguments: message size limits, the maximum connection age, and
    a ping policy that accepts the keepalive pings of servicekit's channels (gRPC's default
    answers a ping more often than every five minutes with GOAWAY ``too_many_pings``)."""
    options: list[tuple[str, int]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
    ]
    if settings.max_connection_age_seconds > 0:
        options += [
            ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
            (
                "grpc.max_connection_age_grace_ms",
                int(settings.max_connection_age_grace_seconds * 1000),
            ),
        ]
    return options


def _not_public() -> object:
    any_public = filters.any_of(*(filters.service_prefix(p) for p in _service_prefixes()))
    return filters.negate(any_public)


def _service_prefixes() -> tuple[str, ...]:
    return tuple(p.strip("/").split("/", 1)[0] for p in PUBLIC_PREFIXES)


def serve(running: RunningServer, grace_seconds: float) -> None:
    """Starts the server and blocks until SIGTERM or SIGINT has stopped it: drained for
    the settings' ``drain_seconds`` (a second signal cuts the drain short), server streams
    ended, then stopped with ``grace_seconds`` for calls in flight."""
    requested = threading.Event()
    hurry = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("server_stopping", extra={"signal": signal.Signals(signum).name})
        if requested.is_set():
            hurry.set()
        requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running.start()
    while not requested.wait(0.5):
        pass
    running.shutdown(running.settings.drain_seconds, grace_seconds, hurry)
    log.info("server_stopped")

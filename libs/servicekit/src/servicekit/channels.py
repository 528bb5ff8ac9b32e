"""Outgoing calls: channels, retries on UNAVAILABLE only, and service-account tokens.

Every call made through a client wrapper passes a deadline. Retries are made by
:func:`with_retries` around a call, not by a retry policy in the channel's service config:
such a policy makes every call keep a copy of its messages for a possible retry, a CPU cost
on every call that showed in careplan's benchmark (29-31 % of the baseline at 8 clients with
it, 37-42 % without). A retried write carries the same ``request_id``, so a retry never
duplicates.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import grpc
from opentelemetry.instrumentation.grpc import client_interceptor
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit import tls
from servicekit.errors import Unavailable
from servicekit.telemetry import tracing_configured

RETRY_ATTEMPTS = 4
RETRY_INITIAL_BACKOFF = 0.1
RETRY_MAX_BACKOFF = 2.0

T = TypeVar("T")


#: A channel pings its server this often while a call is open, so that a connection a
#: middlebox dropped is noticed; the servers permit it (servicekit.server.MIN_PING_INTERVAL_MS).
KEEPALIVE_TIME_MS = 30_000


def with_retries(
    call: Callable[[float], T],
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``call(remaining_seconds)``, retried on UNAVAILABLE: at most RETRY_ATTEMPTS attempts,
    waits drawn at random below an exponentially growing backoff (0.1 s doubling to 2 s, as
    gRPC's own retry policy does), all within one overall ``timeout``."""
    deadline = clock() + timeout
    backoff = RETRY_INITIAL_BACKOFF
    attempt = 1
    while True:
        try:
            return call(max(deadline - clock(), 0.001))
        except grpc.RpcError as error:
            code = getattr(error, "code", lambda: None)()
            if code != grpc.StatusCode.UNAVAILABLE or attempt >= RETRY_ATTEMPTS:
                raise
            pause = random.uniform(0, backoff)  # noqa: S311 - jitter, not security
            if clock() + pause >= deadline:
                raise
            sleep(pause)
            backoff = min(backoff * 2, RETRY_MAX_BACKOFF)
            attempt += 1


class _WithToken:
    """A multi-callable that sends the current bearer token with every call."""

    __slots__ = ("_inner", "_token")

    def __init__(self, inner: Any, token: Callable[[], str]) -> None:
        self._inner = inner
        self._token = token

    def _metadata(self, metadata: Any) -> tuple[tuple[str, str], ...]:
        bearer = ("authorization", f"Bearer {self._token()}")
        if not metadata:
            return (bearer,)
        return (*(m for m in metadata if m[0] != "authorization"), bearer)

    def __call__(
        self, request: Any, timeout: Any = None, metadata: Any = None, *args: Any, **kw: Any
    ) -> Any:
        return self._inner(request, timeout, self._metadata(metadata), *args, **kw)

    def with_call(
        self, request: Any, timeout: Any = None, metadata: Any = None, *args: Any, **kw: Any
    ) -> Any:
        return self._inner.with_call(request, timeout, self._metadata(metadata), *args, **kw)

    def future(
        self, request: Any, timeout: Any = None, metadata: Any = None, *args: Any, **kw: Any
    ) -> Any:
        return self._inner.future(request, timeout, self._metadata(metadata), *args, **kw)


class _BearerChannel(grpc.Channel):
    """A channel whose every call carries ``Authorization: Bearer <token()>``. It wraps each
    multi-callable directly, which costs far less per call than a client interceptor."""

    def __init__(self, channel: grpc.Channel, token: Callable[[], str]) -> None:
        self._channel = channel
        self._token = token

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _WithToken(self._channel.unary_unary(method, *args, **kwargs), self._token)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _WithToken(self._channel.unary_stream(method, *args, **kwargs), self._token)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _WithToken(self._channel.stream_unary(method, *args, **kwargs), self._token)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _WithToken(self._channel.stream_stream(method, *args, **kwargs), self._token)

    def subscribe(self, callback: Any, try_to_connect: bool = False) -> None:
        self._channel.subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Any) -> None:
        self._channel.unsubscribe(callback)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> _BearerChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChannelSettings(BaseSettings):
    """How a service's channels reach other services; read from ``<SERVICE>_*`` variables
    (the prefix of the process's own settings)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # The CA that signs the servers' certificates: set, every channel is TLS and verifies
    # the server (its host name included). The service's own certificate and key (the same
    # files it serves with) are presented to servers that require mutual TLS.
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # The client-side balancing policy; round_robin spreads calls over every address a
    # dns:/// target resolves to (a headless Service lists one per ready pod).
    load_balancing_policy: str = "round_robin"
    # The realm's in-cluster URL (http://keycloak.keycloak.svc:8080/realms/carenet) that
    # service-account tokens are fetched from, when the issuer named in tokens is a public
    # URL this pod's egress does not reach; empty: the issuer itself.
    oidc_internal_url: str = ""

    @classmethod
    def for_service(cls, prefix: str) -> ChannelSettings:
        return cls(_env_prefix=prefix)  # type: ignore[call-arg]


_prefix_lock = threading.Lock()
_settings_prefix: list[str] = []


def use_settings_prefix(prefix: str) -> None:
    """Names the environment prefix (``IDENTITY_``) whose :class:`ChannelSettings` the
    channels of this process use when none are passed. Set by
    :meth:`ServiceAccountTokens.from_settings` and by ``servicekit.server.create_server``."""
    with _prefix_lock:
        _settings_prefix[:] = [prefix]


def process_channel_settings() -> ChannelSettings:
    with _prefix_lock:
        prefix = _settings_prefix[0] if _settings_prefix else ""
    return ChannelSettings.for_service(prefix) if prefix else ChannelSettings()


def open_channel(
    target: str,
    *,
    token: Callable[[], str] | None = None,
    settings: ChannelSettings | None = None,
) -> grpc.Channel:
    """A channel to ``target`` (``host:port``, or ``dns:///name:port`` for a headless
    Service), TLS when the settings name a CA (servicekit.tls), plaintext otherwise (local
    runs on loopback), balancing round-robin over the addresses the target resolves to and
    that report SERVING on the health service, with client spans when a tracer provider is
    configured. Transparent retries (of calls that never left this process) are on; other
    retries are the caller's (:func:`with_retries`)."""
    settings = settings or process_channel_settings()
    config = json.dumps(
        {
            "loadBalancingConfig": [{settings.load_balancing_policy: {}}],
            # Client-side health checking: an instance that reports NOT_SERVING (draining)
            # gets no new calls from this channel, so it stops with none in flight.
            "healthCheckConfig": {"serviceName": ""},
        }
    )
    options: list[tuple[str, Any]] = [
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.service_config", config),
        # Reconnect to an address that came back (a pod replaced in place) within a
        # second or two, not after gRPC's default backoff of up to two minutes.
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]
    if settings.tls_ca_file:
        credentials = tls.channel_credentials(
            settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file
        )
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    if token is not None:
        channel = _BearerChannel(channel, token)
    return traced(channel) if tracing_configured() else channel


def traced(channel: grpc.Channel, tracer_provider: Any = None) -> grpc.Channel:
    """The channel with OpenTelemetry client spans (trace context goes out in metadata)."""
    from opentelemetry.instrumentation.grpc import grpcext

    interceptor = client_interceptor(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]
    wrapped: grpc.Channel = grpcext.intercept_channel(channel, interceptor)  # type: ignore[no-untyped-call]
    return wrapped


class ServiceAccountSettings(Protocol):
    oidc_issuer: str
    oidc_client_id: str
    oidc_client_secret: str


class ServiceAccountTokens:
    """Client-credentials tokens for this service's own account, cached until near expiry."""

    @classmethod
    def from_settings(cls, settings: ServiceAccountSettings) -> ServiceAccountTokens:
        """Tokens for the account the settings name; their environment prefix also becomes
        the one this process's channels read their :class:`ChannelSettings` from."""
        config = getattr(settings, "model_config", {})
        prefix = config.get("env_prefix") if isinstance(config, dict) else None
        if prefix:
            use_settings_prefix(str(prefix))
        internal = ChannelSettings.for_service(str(prefix or "")).oidc_internal_url
        return cls(
            issuer=internal or settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
        )

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        refresh_margin_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from keycloak import KeycloakOpenID

        base, _, realm = issuer.rstrip("/").rpartition("/realms/")
        self._openid = KeycloakOpenID(
            server_url=base + "/",
            realm_name=realm,
            client_id=client_id,
            client_secret_key=client_secret,
            timeout=5,
        )
        self._margin = refresh_margin_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._expires_at = 0.0

    def __call__(self) -> str:
        """The current token. When a new one cannot be had because the issuer does not
        answer (or answers 5xx), UNAVAILABLE ``ISSUER_UNAVAILABLE``: the call that needed it
        may be retried once the issuer is back. A refusal of the credentials stays an
        error of this service (INTERNAL)."""
        from keycloak.exceptions import KeycloakConnectionError, KeycloakError

        with self._lock:
            now = self._clock()
            if not self._token or now >= self._expires_at - self._margin:
                try:
                    response = self._openid.token(grant_type="client_credentials")
                except KeycloakError as exc:
                    status = getattr(exc, "response_code", None)
                    if isinstance(exc, KeycloakConnectionError) or status is None or status >= 500:
                        raise Unavailable(
                            "the issuer cannot give this service a token now; retry",
                            reason="ISSUER_UNAVAILABLE",
                        ) from exc
                    raise
                self._token = str(response["access_token"])
                self._expires_at = now + float(response.get("expires_in", 60))
            return self._token

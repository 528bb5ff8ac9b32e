"""Channels to the carenet services: TLS (a CA file, optionally a client certificate for
mutual TLS) or plaintext (local runs), and the retry of UNAVAILABLE.

Retries are this library's own bounded exponential backoff (:class:`RetryPolicy`), not the
gRPC service-config retry policy: a unary call that fails with UNAVAILABLE is sent again
after 0.2 s, 0.4 s, 0.8 s ... (capped at ``max_backoff``) until ``max_attempts`` or the call's
deadline is reached, whichever comes first; every attempt gets what is left of that one
deadline. Nothing else is retried (AIP-194). Writes that create carry a ``request_id``, so a
retry of a write the server did commit returns the first result. The channel's own retry
support is switched off so that a call is never retried twice over.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc

from carenet_client.errors import CarenetError, from_rpc_error

__all__ = ["RetryPolicy", "TlsConfig", "call_with_retry", "make_channel"]

T = TypeVar("T")


@dataclass(frozen=True)
class TlsConfig:
    """TLS for a channel. ``ca_file`` is the CA bundle that signed the servers' certificates
    (the system's roots when None); ``cert_file``/``key_file`` a client certificate for
    mutual TLS; ``server_name`` overrides the name checked in the server's certificate."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file")
        return grpc.ssl_channel_credentials(
            root_certificates=Path(self.ca_file).read_bytes() if self.ca_file else None,
            private_key=Path(self.key_file).read_bytes() if self.key_file else None,
            certificate_chain=Path(self.cert_file).read_bytes() if self.cert_file else None,
        )


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 3.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def backoffs(self) -> list[float]:
        waits, wait = [], self.initial_backoff
        for _ in range(self.max_attempts - 1):
            waits.append(min(wait, self.max_backoff))
            wait *= self.multiplier
        return waits


NO_RETRY = RetryPolicy(max_attempts=1)


def make_channel(target: str, tls: TlsConfig | None = None) -> grpc.Channel:
    """A channel to ``target`` (``host:port``): TLS when ``tls`` is given, else plaintext."""
    options: list[tuple[str, int | str]] = [
        ("grpc.enable_retries", 0),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.max_receive_message_length", 32 * 1024 * 1024),
    ]
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(target, tls.credentials(), options=options)


def call_with_retry(
    attempt: Callable[[float | None], T],
    *,
    timeout: float | None,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Runs ``attempt(remaining_timeout)``; retries UNAVAILABLE within the one deadline.

    Raises :class:`CarenetError` for every failure, the last one when attempts run out.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    waits = policy.backoffs()
    for number in range(policy.max_attempts):
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise CarenetError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
        try:
            return attempt(remaining)
        except grpc.RpcError as raw:
            error = from_rpc_error(raw)
            if not error.retryable or number == policy.max_attempts - 1:
                raise error from None
            wait = waits[number] * (1 + random.uniform(-policy.jitter, policy.jitter))  # noqa: S311
            if deadline is not None:
                wait = min(wait, max(deadline - time.monotonic(), 0))
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover

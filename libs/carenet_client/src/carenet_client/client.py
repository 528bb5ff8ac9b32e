"""Typed wrappers over the generated stubs for the flows of a KIS and of an insurer.

::

    from carenet_client import Carenet

    with Carenet.from_env() as carenet:
        for match in carenet.referrals.find_offers({"conditions": ["T90"], "age": 58}):
            print(match.offer.name, match.eligibility.eligible)

Every method sends the caller's bearer token (and ``x-carenet-on-behalf-of`` when the
client acts for a person), runs under one deadline with the retries of
:mod:`carenet_client.channels`, and raises :class:`carenet_client.CarenetError`. List
methods return iterators that fetch page after page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc

from carenet.identity.v1 import identity_service_pb2_grpc
from carenet_client.apis import (
    ON_BEHALF_OF_HEADER,
    CarePlanApi,
    IdentityApi,
    IngestResult,
    OutcomesApi,
    ReferralApi,
    patient_name,
    timestamp,
)
from carenet_client.auth import ClientCredentials, PasswordLogin, StaticToken, TokenSource
from carenet_client.channels import RetryPolicy, TlsConfig, make_channel
from carenet_client.config import SERVICES, Settings
from carenet_client.errors import CarenetError

__all__ = ["Carenet", "IngestResult", "patient_name", "timestamp"]

R = TypeVar("R")


class Carenet:
    """A client of the carenet services: one channel per service, one token source.

    ``targets`` maps a service (``identity``, ``referral``, ``careplan``, ``outcomes``) to
    ``host:port``; ``endpoint`` is used for any service not named. ``tls=None`` means
    plaintext. ``on_behalf_of`` is the Keycloak user id of the person a delegate system (a
    KIS's service account) acts for; the platform accepts it only from such a system.
    """

    def __init__(
        self,
        *,
        credentials: TokenSource,
        endpoint: str = "",
        targets: Mapping[str, str] | None = None,
        tls: TlsConfig | None = None,
        on_behalf_of: str = "",
        timeout: float | None = 15.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        import time

        self.credentials = credentials
        self.settings = Settings(endpoint=endpoint, targets=dict(targets or {}))
        self.tls = tls
        self.on_behalf_of = on_behalf_of
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep or time.sleep
        self._channels: dict[str, grpc.Channel] = {}
        self._apis: dict[str, Any] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Carenet:
        credentials: TokenSource
        verify: bool | str = settings.ca_file or True
        if settings.token:
            credentials = StaticToken(settings.token)
        elif settings.username:
            credentials = PasswordLogin(
                settings.issuer,
                settings.client_id,
                settings.client_secret or None,
                settings.username,
                settings.password,
                verify=verify,
            )
        elif settings.client_id:
            credentials = ClientCredentials(
                settings.issuer, settings.client_id, settings.client_secret or None, verify=verify
            )
        else:
            raise ValueError("no credentials: set CARENET_CLIENT_ID and CARENET_CLIENT_SECRET")
        if not (settings.token or settings.issuer):
            raise ValueError("no issuer: set CARENET_ISSUER (the Keycloak realm URL)")
        tls = (
            None
            if settings.plaintext
            else TlsConfig(
                ca_file=settings.ca_file or None,
                cert_file=settings.client_cert or None,
                key_file=settings.client_key or None,
                server_name=settings.tls_server_name or None,
            )
        )
        return cls(
            credentials=credentials,
            endpoint=settings.endpoint,
            targets=settings.targets,
            tls=tls,
            on_behalf_of=settings.on_behalf_of,
            timeout=settings.timeout,
        )

    @classmethod
    def from_env(cls) -> Carenet:
        """A client configured by the ``CARENET_*`` variables (:mod:`carenet_client.config`)."""
        return cls.from_settings(Settings.from_env())

    def channel(self, service: str) -> grpc.Channel:
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}")
        if service not in self._channels:
            self._channels[service] = make_channel(self.settings.target(service), self.tls)
        return self._channels[service]

    def metadata(self) -> tuple[tuple[str, str], ...]:
        headers: tuple[tuple[str, str], ...] = (
            ("authorization", f"Bearer {self.credentials.access_token()}"),
        )
        if self.on_behalf_of:
            headers += ((ON_BEHALF_OF_HEADER, self.on_behalf_of),)
        return headers

    def acting_for(self, person: str) -> Carenet:
        """A client sharing this one's token source that acts for ``person`` (a Keycloak user
        id) through ``x-carenet-on-behalf-of``."""
        other = Carenet(
            credentials=self.credentials,
            endpoint=self.settings.endpoint,
            targets=self.settings.targets,
            tls=self.tls,
            on_behalf_of=person,
            timeout=self.timeout,
            retry=self.retry,
            sleep=self.sleep,
        )
        other._channels = self._channels
        return other

    def _api(self, key: str, kind: Callable[[Carenet], R]) -> R:
        if key not in self._apis:
            self._apis[key] = kind(self)
        found: R = self._apis[key]
        return found

    @property
    def referrals(self) -> ReferralApi:
        return self._api("referral", ReferralApi)

    @property
    def outcomes(self) -> OutcomesApi:
        return self._api("outcomes", OutcomesApi)

    @property
    def careplans(self) -> CarePlanApi:
        return self._api("careplan", CarePlanApi)

    @property
    def identity(self) -> IdentityApi:
        return self._api("identity", IdentityApi)

    @property
    def identity_stub(self) -> identity_service_pb2_grpc.IdentityServiceStub:
        """The generated identity stub on this client's channel (send ``metadata()``)."""
        return identity_service_pb2_grpc.IdentityServiceStub(self.channel("identity"))

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
        self._apis.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ += ["CarePlanApi", "CarenetError", "IdentityApi", "OutcomesApi", "ReferralApi", "timestamp"]

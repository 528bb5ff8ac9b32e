"""Access tokens from Keycloak (python-keycloak), refreshed before they expire.

- :class:`ClientCredentials`: a system's own service account (a KIS, an insurer's reporting
  client), the ``client_credentials`` grant.
- :class:`PasswordLogin`: a person through a client that allows direct access grants (the
  demo realm's ``carenet-kis``); for local trials and scripts, not for production systems.
- :class:`StaticToken`: a bearer token obtained elsewhere (``CARENET_TOKEN``).

A token is fetched on first use and again when less than ``refresh_margin`` seconds (or a
tenth of its lifetime, whichever is larger) remain, so no call leaves with a token that
expires on its way.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from keycloak import KeycloakOpenID

__all__ = [
    "ClientCredentials",
    "PasswordLogin",
    "StaticToken",
    "TokenSource",
    "split_issuer",
]


class TokenSource(Protocol):
    def access_token(self) -> str:
        """A bearer token valid for at least the next few seconds."""
        ...


def split_issuer(issuer: str) -> tuple[str, str]:
    """``https://host/realms/carenet`` -> (``https://host/``, ``carenet``), as python-keycloak
    wants them."""
    base, sep, realm = issuer.rstrip("/").rpartition("/realms/")
    if not sep or not realm:
        raise ValueError(f"issuer {issuer!r} is not a Keycloak realm URL (…/realms/<realm>)")
    return f"{base}/", realm


@dataclass(frozen=True)
class StaticToken:
    token: str

    def access_token(self) -> str:
        return self.token


class _KeycloakToken:
    """Shared caching and refresh of a python-keycloak token response."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        *,
        verify: bool | str = True,
        refresh_margin: float = 30.0,
    ) -> None:
        server_url, realm = split_issuer(issuer)
        self.issuer = issuer
        self.client_id = client_id
        self._openid = KeycloakOpenID(
            server_url=server_url,
            realm_name=realm,
            client_id=client_id,
            client_secret_key=client_secret,
            verify=verify,
        )
        self._margin = refresh_margin
        self._lock = threading.Lock()
        self._token = ""
        self._expires_at = 0.0
        self.fetches = 0

    def _grant(self, openid: KeycloakOpenID) -> dict[str, Any]:
        raise NotImplementedError

    def access_token(self) -> str:
        with self._lock:
            if not self._token or time.monotonic() >= self._expires_at:
                started = time.monotonic()
                response = self._grant(self._openid)
                token = response.get("access_token")
                if not isinstance(token, str) or not token:
                    raise RuntimeError(f"{self.issuer} answered without an access_token")
                lifetime = float(response.get("expires_in") or 60)
                margin = max(self._margin, lifetime / 10)
                self._token = token
                self._expires_at = started + max(lifetime - margin, 0.0)
                self.fetches += 1
            return self._token

    def expire(self) -> None:
        """Forget the cached token; the next call fetches a new one."""
        with self._lock:
            self._expires_at = 0.0


class ClientCredentials(_KeycloakToken):
    """A service account's token (``grant_type=client_credentials``)."""

    def _grant(self, openid: KeycloakOpenID) -> dict[str, Any]:
        response: dict[str, Any] = openid.token(grant_type="client_credentials")
        return response


class PasswordLogin(_KeycloakToken):
    """A person's token through a client with direct access grants."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        username: str,
        password: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(issuer, client_id, client_secret, **kwargs)
        self.username = username
        self._password = password

    def _grant(self, openid: KeycloakOpenID) -> dict[str, Any]:
        response: dict[str, Any] = openid.token(self.username, self._password)
        return response

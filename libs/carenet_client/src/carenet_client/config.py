"""Where the services are and who the caller is, from environment variables.

- ``CARENET_ENDPOINT``: ``host:port`` of every service (one gateway); overridden per
  service by ``CARENET_IDENTITY_TARGET``, ``CARENET_REFERRAL_TARGET``,
  ``CARENET_CAREPLAN_TARGET`` and ``CARENET_OUTCOMES_TARGET``.
- ``CARENET_ISSUER``: the Keycloak realm URL, e.g. ``https://login.example.org/realms/carenet``.
- ``CARENET_CLIENT_ID``, ``CARENET_CLIENT_SECRET``: the system's client (client credentials).
- ``CARENET_USERNAME``, ``CARENET_PASSWORD``: a person's login through that client (direct
  access grant; for trials, not for production systems).
- ``CARENET_TOKEN``: a bearer token obtained elsewhere, instead of the above.
- ``CARENET_ON_BEHALF_OF``: the Keycloak user id of the person a delegate system acts for.
- ``CARENET_PLAINTEXT``: ``1`` or ``true`` for no TLS (local runs); TLS otherwise.
- ``CARENET_CA_FILE``, ``CARENET_CLIENT_CERT``, ``CARENET_CLIENT_KEY``,
  ``CARENET_TLS_SERVER_NAME``: TLS: the CA bundle (the system's roots when unset), a client
  certificate and key (mutual TLS), the name to check in the server's certificate.
- ``CARENET_TIMEOUT``: the deadline of a call in seconds, retries included (default 15).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

__all__ = ["SERVICES", "Settings"]

SERVICES = ("identity", "referral", "careplan", "outcomes")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    endpoint: str = ""
    targets: dict[str, str] = field(default_factory=dict)
    issuer: str = ""
    client_id: str = ""
    client_secret: str = ""
    username: str = ""
    password: str = ""
    token: str = ""
    on_behalf_of: str = ""
    plaintext: bool = False
    ca_file: str = ""
    client_cert: str = ""
    client_key: str = ""
    tls_server_name: str = ""
    timeout: float = 15.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(f"CARENET_{name.upper()}", "").strip()

        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name in ("targets", "plaintext", "timeout"):
                continue
            if get(f.name):
                values[f.name] = get(f.name)
        targets = {s: get(f"{s}_target") for s in SERVICES if get(f"{s}_target")}
        if get("plaintext"):
            values["plaintext"] = get("plaintext").lower() in _TRUE
        if get("timeout"):
            values["timeout"] = float(get("timeout"))
        return cls(targets=targets, **values)  # type: ignore[arg-type]

    def merged(self, profile: Mapping[str, object]) -> Settings:
        """These settings with the gaps filled from a stored profile (env wins)."""
        updates: dict[str, object] = {}
        for f in fields(self):
            stored = profile.get(f.name)
            if stored in (None, "", {}):
                continue
            if f.name == "targets" and isinstance(stored, dict):
                updates["targets"] = {**{str(k): str(v) for k, v in stored.items()}, **self.targets}
            elif f.name == "plaintext":
                updates["plaintext"] = self.plaintext or bool(stored)
            elif f.name == "timeout":
                continue
            elif not getattr(self, f.name):
                updates[f.name] = stored
        return replace(self, **updates)  # type: ignore[arg-type]

    def target(self, service: str) -> str:
        found = self.targets.get(service) or self.endpoint
        if not found:
            variable = f"CARENET_{service.upper()}_TARGET"
            raise ValueError(f"no address for {service}: set {variable} or CARENET_ENDPOINT")
        return found

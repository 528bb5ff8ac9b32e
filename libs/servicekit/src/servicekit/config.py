"""The settings every service shares. Each service subclasses with its own env prefix.

Settings are read once, from the environment, in the composition root (``main.py``).
A missing required setting fails at start with a message naming the variable.
"""

from __future__ import annotations

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.paging import MIN_KEY_BYTES


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str
    oidc_issuer: str
    oidc_audience: str
    grpc_host: str = "[::]"
    grpc_port: int = 50051
    oidc_jwks_url: str = ""
    jwks_max_age_seconds: float = 300.0
    jwks_refetch_cooldown_seconds: float = 30.0
    token_leeway_seconds: int = 30
    shutdown_grace_seconds: float = 10.0
    max_workers: int = 32
    log_level: str = "INFO"
    # HMAC key of the page tokens (servicekit.paging). Shared by all replicas of a service;
    # empty: a random key per process (local runs and tests only).
    page_token_key: SecretStr = SecretStr("")

    @field_validator("page_token_key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if secret and len(secret.encode()) < MIN_KEY_BYTES:
            raise ValueError(f"must be at least {MIN_KEY_BYTES} bytes (e.g. openssl rand -hex 32)")
        return value

    @property
    def jwks_url(self) -> str:
        return self.oidc_jwks_url or f"{self.oidc_issuer.rstrip('/')}/protocol/openid-connect/certs"


class ClientSettings(BaseSettings):
    """Settings of a service that calls other services with its own service account."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # identity's host:port: every read and write of patient data is authorized there.
    identity_target: str
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    call_deadline_seconds: float = 5.0
    # How long identity's answer about the person a delegate acts for is reused
    # (servicekit.delegation), 0 to 300 s; 0: asked on every call.
    delegation_cache_seconds: float = 30.0

    @field_validator("delegation_cache_seconds")
    @classmethod
    def _bounded(cls, value: float) -> float:
        if not 0 <= value <= 300:
            raise ValueError("must be 0 to 300 seconds")
        return value

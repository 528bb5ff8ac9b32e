"""Settings of the FHIR API, read once from ``FHIR_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FHIR_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = 8001
    # The issuer the bearer tokens name (Keycloak realm URL) and the audience this API accepts.
    oidc_issuer: str
    oidc_audience: str = "carenet-fhir"
    # JWKS URL; empty: <issuer>/protocol/openid-connect/certs.
    oidc_jwks_url: str = ""
    jwks_max_age_seconds: float = 300.0
    jwks_refetch_cooldown_seconds: float = 30.0
    token_leeway_seconds: int = 30
    identity_target: str
    referral_target: str
    careplan_target: str
    outcomes_target: str
    call_deadline_seconds: float = 5.0
    # The public base URL of the API (no trailing slash), e.g. https://fhir.zorg.example/fhir/R4;
    # Bundle links and fullUrls are built from it. Empty: from the request (local runs).
    public_url: str = ""
    # Base of carenet's own code systems and naming systems (a URL the care group publishes).
    canonical_base: str = "https://carenet.example/fhir"
    # Searches return at most this many entries a page (a larger _count is capped).
    max_page_size: int = 100
    default_page_size: int = 20
    workers: int = 2
    threads: int = 8
    log_level: str = "INFO"

    @property
    def jwks_url(self) -> str:
        return self.oidc_jwks_url or f"{self.oidc_issuer.rstrip('/')}/protocol/openid-connect/certs"

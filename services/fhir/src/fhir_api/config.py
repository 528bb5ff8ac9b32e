"""Settings of the FHIR API, read once from ``FHIR_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.fronts import FrontSettings


class Settings(FrontSettings):
    """servicekit.fronts.FrontSettings (address, issuer, the services' targets, public_url,
    workers, threads, log level) and the FHIR API's own settings. ``public_url`` is the API's
    base, e.g. https://fhir.zorg.example/fhir/R4 (Bundle links and fullUrls)."""

    model_config = SettingsConfigDict(env_prefix="FHIR_", extra="ignore", frozen=True)

    port: int = 8001
    # The audience this API accepts (tokens name the issuer, oidc_issuer).
    oidc_audience: str = "carenet-fhir"
    # JWKS URL; empty: <issuer>/protocol/openid-connect/certs.
    oidc_jwks_url: str = ""
    jwks_max_age_seconds: float = 300.0
    jwks_refetch_cooldown_seconds: float = 30.0
    token_leeway_seconds: int = 30
    # Base of carenet's own code systems and naming systems (a URL the care group publishes).
    canonical_base: str = "https://carenet.example/fhir"
    # Searches return at most this many entries a page (a larger _count is capped).
    max_page_size: int = 100
    default_page_size: int = 20

    @property
    def jwks_url(self) -> str:
        return self.oidc_jwks_url or f"{self.oidc_issuer.rstrip('/')}/protocol/openid-connect/certs"

"""Settings of the web front, read once from ``WEB_*`` environment variables."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.fronts import FrontSettings


class Settings(FrontSettings):
    """servicekit.fronts.FrontSettings (address, issuer, the services' targets, public_url,
    workers, threads, log level) and the web front's own settings."""

    model_config = SettingsConfigDict(env_prefix="WEB_", extra="ignore", frozen=True)

    port: int = 8000
    oidc_client_id: str = "carenet-web"
    oidc_client_secret: SecretStr
    # The realm's in-cluster URL, for what the server fetches itself (discovery, token,
    # keys); browsers are sent to the issuer's own URLs, as Keycloak's discovery names them.
    oidc_internal_url: str = ""
    # Signs Flask's own values (the CSRF token). Shared by all replicas; 32 bytes or more.
    secret_key: SecretStr
    # Where the server-side sessions (tokens) live: a folder (one replica, or a shared volume).
    session_dir: str = ""  # empty: <system temp dir>/carenet-web-sessions
    session_lifetime_seconds: int = 8 * 60 * 60
    # Cookies only over HTTPS (Secure). Off only for plain-HTTP local runs.
    secure_cookies: bool = True
    # Redirect HTTP to HTTPS and send HSTS (behind a TLS-terminating proxy: also proxy_hops).
    force_https: bool = False
    # Reverse proxies in front (X-Forwarded-For/-Proto/-Host trusted from this many hops).
    proxy_hops: int = 0
    # Refresh the access token when it expires within this many seconds.
    token_refresh_margin_seconds: int = 30
    # How long an organisation's display name (from identity) is kept per process.
    organisation_names_ttl_seconds: float = 300.0

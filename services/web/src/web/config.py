"""Settings of the web front, read once from ``WEB_*`` environment variables."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEB_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = 8000
    # The issuer (Keycloak realm URL), e.g. https://keycloak.example/realms/carenet.
    oidc_issuer: str
    oidc_client_id: str = "carenet-web"
    oidc_client_secret: SecretStr
    # The realm's in-cluster URL, for what the server fetches itself (discovery, token,
    # keys); browsers are sent to the issuer's own URLs, as Keycloak's discovery names them.
    oidc_internal_url: str = ""
    # The public base URL of this front (no trailing slash), e.g. https://zorg.example; the
    # OIDC redirect URIs are built from it. Empty: from the request (local runs).
    public_url: str = ""
    identity_target: str
    referral_target: str
    careplan_target: str
    outcomes_target: str
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
    call_deadline_seconds: float = 5.0
    workers: int = 2
    threads: int = 8
    log_level: str = "INFO"

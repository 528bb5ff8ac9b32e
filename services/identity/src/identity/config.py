"""Settings of the identity service, read once from ``IDENTITY_*`` environment variables."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore", frozen=True)

    grpc_port: int = 50051
    oidc_audience: str = "carenet-identity"
    # Key for the keyed hash under which BSNs are stored and looked up (required).
    bsn_pepper: SecretStr
    # How many hash chains the access log is striped over (1..64); more lets more
    # concurrent Authorize calls commit in parallel.
    access_log_stripes: int = 16
    # Keycloak admin access for provisioning organisations' service-account clients.
    keycloak_admin_url: str = ""
    keycloak_admin_realm: str = "master"
    keycloak_admin_client_id: str = ""
    keycloak_admin_client_secret: SecretStr = SecretStr("")
    keycloak_realm: str = "carenet"

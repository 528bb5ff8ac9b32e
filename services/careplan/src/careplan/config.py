"""Settings of the careplan service, read once from ``CAREPLAN_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.config import ClientSettings, ServiceSettings


class Settings(ServiceSettings, ClientSettings):
    model_config = SettingsConfigDict(env_prefix="CAREPLAN_")

    grpc_port: int = 50053
    oidc_audience: str = "carenet-careplan"
    # referral's host:port: the linked referrals' events come from there (empty: no consumer).
    referral_target: str = ""
    # This service's own service-account client in the realm.
    oidc_client_id: str = "svc-careplan"
    # Run the referral-event consumer in the serving process.
    consume_referral_events: bool = True
    # Wait before reconnecting after the event stream broke or ended.
    consumer_retry_seconds: float = 1.0

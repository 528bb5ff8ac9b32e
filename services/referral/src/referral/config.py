"""Settings of the referral service, read once from ``REFERRAL_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.config import ClientSettings, ServiceSettings


class Settings(ServiceSettings, ClientSettings):
    model_config = SettingsConfigDict(env_prefix="REFERRAL_")

    grpc_port: int = 50052
    oidc_audience: str = "carenet-referral"
    oidc_client_id: str = "svc-referral"
    # How often an open WatchReferralEvents stream polls the outbox.
    watch_poll_seconds: float = 0.2
    # Events read from the outbox per poll.
    watch_batch_size: int = 200
    # Fault injection for the "kill between commit and reply" test: after committing a
    # CreateReferral, the process exits at once (os._exit) without replying. OFF by default;
    # never set it outside tests.
    fault_exit_after_create_commit: bool = False

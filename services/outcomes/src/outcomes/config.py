"""Settings of the outcomes service, read once from ``OUTCOMES_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.config import ClientSettings, ServiceSettings


class Settings(ServiceSettings, ClientSettings):
    model_config = SettingsConfigDict(env_prefix="OUTCOMES_")

    grpc_port: int = 50054
    oidc_audience: str = "carenet-outcomes"
    # Rows validated, authorized and copied per transaction in IngestMeasurements.
    ingest_chunk_rows: int = 5000

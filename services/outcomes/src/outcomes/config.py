"""Settings of the outcomes service, read once from ``OUTCOMES_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.config import ClientSettings, ServiceSettings


class Settings(ServiceSettings, ClientSettings):
    model_config = SettingsConfigDict(env_prefix="OUTCOMES_")

    grpc_port: int = 50054
    oidc_audience: str = "carenet-outcomes"
    # Rows validated, authorized and copied per transaction in IngestMeasurements.
    ingest_chunk_rows: int = 5000
    # How long an ingest chunk waits for its record holder's turn before the call fails
    # with UNAVAILABLE INGEST_BUSY.
    ingest_lock_timeout_seconds: float = Field(default=10.0, gt=0, le=600)

"""Composition root of the outcomes service: Settings -> engine -> clients -> server -> wait."""

from __future__ import annotations

import json
import sys

from outcomes.config import Settings
from outcomes.deps import Deps
from outcomes.server import create_server
from outcomes.unit_of_work import UnitOfWork
from outcomes.use_cases import indicators
from servicekit.auth import verifier_for
from servicekit.channels import ServiceAccountTokens, open_channel
from servicekit.cli import service_cli
from servicekit.db import make_engine, make_session_factory
from servicekit.delegation import IdentityDelegations
from servicekit.identity_client import Category, GrpcIdentityClient
from servicekit.logs import configure_logging
from servicekit.server import serve as serve_forever
from servicekit.telemetry import configure_tracing, instrument_engine


def build_deps(settings: Settings) -> Deps:
    engine = make_engine(settings.database_url)
    instrument_engine(engine)
    sessions = make_session_factory(engine)
    tokens = ServiceAccountTokens.from_settings(settings)
    channel = open_channel(settings.identity_target, token=tokens)
    return Deps(
        uow=lambda: UnitOfWork(sessions),
        identity=GrpcIdentityClient(
            channel, Category.MEASUREMENTS, deadline_seconds=settings.call_deadline_seconds
        ),
        ingest_chunk_rows=settings.ingest_chunk_rows,
        ingest_lock_timeout_seconds=settings.ingest_lock_timeout_seconds,
        delegations=IdentityDelegations(
            channel,
            ttl_seconds=settings.delegation_cache_seconds,
            deadline_seconds=settings.call_deadline_seconds,
        ),
    )


def serve(settings: Settings) -> None:
    configure_logging("outcomes", settings.log_level)
    configure_tracing("outcomes")
    deps = build_deps(settings)
    indicators.load_definitions(deps)
    running = create_server(settings, deps, verifier_for(settings))
    serve_forever(running, settings.shutdown_grace_seconds)


def seed_demo(settings: Settings, args: list[str]) -> None:
    """``outcomes seed-demo``: the demo region's population, contract and report (idempotent)."""
    from outcomes import demo

    deps = build_deps(settings)
    indicators.load_definitions(deps)
    summary = demo.seed(deps)
    sys.stdout.write(json.dumps({"seeded": "outcomes", **summary}) + "\n")


main = service_cli("outcomes", Settings, serve, extra={"seed-demo": seed_demo})


if __name__ == "__main__":
    main()

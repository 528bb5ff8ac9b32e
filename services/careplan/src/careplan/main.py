"""Composition root of the careplan service: Settings -> engine -> clients -> server -> wait."""

from __future__ import annotations

import json
import sys

from careplan.clients import GrpcReferralEvents, ReferralEvents
from careplan.config import Settings
from careplan.consumer import ReferralEventConsumer
from careplan.coordination import GrpcCoordinators
from careplan.deps import Deps
from careplan.repository import PlanCache
from careplan.server import create_server
from careplan.unit_of_work import UnitOfWork
from servicekit.auth import verifier_for
from servicekit.channels import ServiceAccountTokens, open_channel
from servicekit.cli import service_cli
from servicekit.db import make_engine, make_session_factory
from servicekit.delegation import IdentityDelegations
from servicekit.identity_client import Category, GrpcIdentityClient
from servicekit.logs import configure_logging
from servicekit.server import serve as serve_forever
from servicekit.telemetry import configure_tracing, instrument_engine


def build_deps(settings: Settings, tokens: ServiceAccountTokens | None = None) -> Deps:
    engine = make_engine(settings.database_url)
    instrument_engine(engine)
    sessions = make_session_factory(engine)
    tokens = tokens or ServiceAccountTokens.from_settings(settings)
    channel = open_channel(settings.identity_target, token=tokens)
    identity = GrpcIdentityClient(
        channel, Category.CARE_PLAN, deadline_seconds=settings.call_deadline_seconds
    )
    delegations = IdentityDelegations(
        channel,
        ttl_seconds=settings.delegation_cache_seconds,
        deadline_seconds=settings.call_deadline_seconds,
    )
    # No token of careplan's own on this channel: identity is asked as the caller.
    coordinators = GrpcCoordinators(
        open_channel(settings.identity_target), deadline_seconds=settings.call_deadline_seconds
    )
    plans = PlanCache()
    return Deps(
        uow=lambda: UnitOfWork(sessions, driver_engine=engine, plans=plans),
        identity=identity,
        delegations=delegations,
        coordinators=coordinators,
    )


def build_consumer(
    settings: Settings, deps: Deps, tokens: ServiceAccountTokens
) -> ReferralEventConsumer | None:
    if not (settings.consume_referral_events and settings.referral_target):
        return None
    channel = open_channel(settings.referral_target, token=tokens)

    def events() -> ReferralEvents:
        return GrpcReferralEvents(channel)

    return ReferralEventConsumer(deps, events, retry_seconds=settings.consumer_retry_seconds)


def serve(settings: Settings) -> None:
    configure_logging("careplan", settings.log_level)
    configure_tracing("careplan")
    tokens = ServiceAccountTokens.from_settings(settings)
    deps = build_deps(settings, tokens)
    running = create_server(settings, deps, verifier_for(settings))
    consumer = build_consumer(settings, deps, tokens)
    if consumer is not None:
        consumer.start()
    try:
        serve_forever(running, settings.shutdown_grace_seconds)
    finally:
        if consumer is not None:
            consumer.stop()


def seed_demo(settings: Settings, args: list[str]) -> None:
    """``careplan seed-demo [REFERRAL]``: the demo plan of p-0001 (idempotent)."""
    from careplan import demo

    view = demo.seed(build_deps(settings), referral=args[0] if args else "")
    sys.stdout.write(
        json.dumps({"seeded": "careplan", "care_plan": f"patients/{view.patient_id}/carePlan"})
        + "\n"
    )


main = service_cli("careplan", Settings, serve, extra={"seed-demo": seed_demo})


if __name__ == "__main__":
    main()

"""Composition root of the referral service: Settings -> engine -> clients -> server -> wait."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable

from referral.config import Settings
from referral.deps import Deps
from referral.server import create_server
from referral.unit_of_work import units_of_work
from servicekit.auth import verifier_for
from servicekit.channels import ServiceAccountTokens, open_channel
from servicekit.cli import service_cli
from servicekit.db import make_engine, make_session_factory
from servicekit.delegation import IdentityDelegations
from servicekit.identity_client import Category, GrpcIdentityClient
from servicekit.logs import configure_logging
from servicekit.server import serve as serve_forever
from servicekit.telemetry import configure_tracing, instrument_engine

log = logging.getLogger("referral")


def _exit_after_commit() -> None:
    # Fault injection (REFERRAL_FAULT_EXIT_AFTER_CREATE_COMMIT): die between commit and reply.
    log.warning("fault_injection_exit_after_commit")
    os._exit(17)


def build_deps(settings: Settings) -> Deps:
    engine = make_engine(settings.database_url)
    instrument_engine(engine)
    tokens = ServiceAccountTokens.from_settings(settings)
    channel = open_channel(settings.identity_target, token=tokens)
    delegations = IdentityDelegations(
        channel,
        ttl_seconds=settings.delegation_cache_seconds,
        deadline_seconds=settings.call_deadline_seconds,
    )
    hook: Callable[[], None] | None = (
        _exit_after_commit if settings.fault_exit_after_create_commit else None
    )
    return Deps(
        uow=units_of_work(engine),
        identity=GrpcIdentityClient(
            channel, Category.REFERRAL, deadline_seconds=settings.call_deadline_seconds
        ),
        delegations=delegations,
        after_create_commit=hook,
        watch_poll_seconds=settings.watch_poll_seconds,
        watch_batch_size=settings.watch_batch_size,
    )


def serve(settings: Settings) -> None:
    configure_logging("referral", settings.log_level)
    configure_tracing("referral")
    running = create_server(settings, build_deps(settings), verifier_for(settings))
    serve_forever(running, settings.shutdown_grace_seconds)


def seed_demo(settings: Settings, args: list[str]) -> None:
    """``referral seed-demo [--with-referral]``: the demo menu card of cg-zuidoost and, with
    the flag, p-0001's GLI referral that the demo care plan links to (idempotent)."""
    from referral import demo

    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    demo.seed(sessions)
    referral = demo.seed_referral(sessions) if "--with-referral" in args else ""
    engine.dispose()
    sys.stdout.write(
        json.dumps({"seeded": "referral", "offers": len(demo.OFFERS), "referral": referral}) + "\n"
    )


main = service_cli("referral", Settings, serve, extra={"seed-demo": seed_demo})


if __name__ == "__main__":
    main()

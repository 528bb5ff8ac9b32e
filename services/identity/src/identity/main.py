"""Composition root of the identity service: Settings -> engine -> server -> wait."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from sqlalchemy import Engine

from identity import service
from identity.clients import KeycloakProvisioner, keycloak_admin
from identity.config import Settings
from identity.server import create_server
from identity.unit_of_work import LogStripes, UnitOfWork
from servicekit.auth import verifier_for
from servicekit.cli import run_cli
from servicekit.db import autocommit, is_postgres, make_engine, make_session_factory
from servicekit.logs import configure_logging
from servicekit.server import serve as serve_forever
from servicekit.telemetry import configure_tracing, instrument_engine


def deps_for(
    engine: Engine,
    bsn_pepper: bytes,
    provisioner: service.Provisioner | None = None,
    log_stripes: int = 16,
) -> service.Deps:
    """The use cases' collaborators over one engine."""
    sessions = make_session_factory(engine)
    stripes = LogStripes(log_stripes)
    autocommit_sessions = make_session_factory(autocommit(engine)) if is_postgres(engine) else None
    return service.Deps(
        uow=lambda: UnitOfWork(sessions, stripes),
        bsn_pepper=bsn_pepper,
        provisioner=provisioner,
        autocommit_uow=(lambda: UnitOfWork(autocommit_sessions, stripes, driver_engine=engine))
        if autocommit_sessions
        else None,
    )


def build_deps(settings: Settings) -> service.Deps:
    engine = make_engine(settings.database_url)
    instrument_engine(engine)
    provisioner = None
    if settings.keycloak_admin_url and settings.keycloak_admin_client_id:
        provisioner = KeycloakProvisioner(
            keycloak_admin(
                settings.keycloak_admin_url,
                settings.keycloak_realm,
                settings.keycloak_admin_realm,
                settings.keycloak_admin_client_id,
                settings.keycloak_admin_client_secret.get_secret_value(),
            )
        )
    return deps_for(
        engine,
        settings.bsn_pepper.get_secret_value().encode(),
        provisioner,
        settings.access_log_stripes,
    )


def serve(settings: Settings) -> None:
    configure_logging("identity", settings.log_level)
    configure_tracing("identity")
    running = create_server(settings, build_deps(settings), verifier_for(settings))
    serve_forever(running, settings.shutdown_grace_seconds)


def bootstrap_care_group(settings: Settings, args: list[str]) -> None:
    """``identity bootstrap-care-group ID NAME [AGB]``: creates a tenant (operator only)."""
    if len(args) < 2:
        sys.stderr.write("usage: identity bootstrap-care-group ID NAME [AGB]\n")
        raise SystemExit(2)
    from identity.models import OrganisationType

    org = service.bootstrap_care_group(
        build_deps(settings),
        args[0],
        service.OrganisationInput(
            display_name=args[1],
            type=OrganisationType.CARE_GROUP,
            agb_code=args[2] if len(args) > 2 else "",
        ),
    )
    sys.stdout.write(json.dumps({"care_group": f"organisations/{org.id}"}) + "\n")


def seed_demo(settings: Settings, args: list[str]) -> None:
    """``identity seed-demo``: creates the demo region (idempotent)."""
    from identity import demo

    demo.seed(build_deps(settings))
    sys.stdout.write(json.dumps({"seeded": "identity"}) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    run_cli(
        argv,
        name="identity",
        settings_factory=Settings,  # type: ignore[arg-type]
        serve=serve,
        migrations_package="identity.migrations",
        extra={"bootstrap-care-group": bootstrap_care_group, "seed-demo": seed_demo},
    )


if __name__ == "__main__":
    main()

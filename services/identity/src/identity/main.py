"""Composition root of the identity service: Settings -> engine -> server -> wait."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys

from sqlalchemy import Engine

from identity.access_log_checkpoints import CheckpointPublisher, HeadJournal, publish_checkpoint
from identity.access_log_trust import AccessLogTrust
from identity.clients import KeycloakAdminClient, KeycloakProvisioner, keycloak_admin
from identity.config import Settings
from identity.decision_cache import DecisionCache
from identity.server import create_server
from identity.unit_of_work import LogStripes, UnitOfWork
from identity.use_cases import organisations
from identity.use_cases.deps import Deps, Provisioner
from servicekit.auth import verifier_for
from servicekit.cli import service_cli
from servicekit.db import autocommit, make_engine, make_session_factory
from servicekit.logs import configure_logging
from servicekit.server import serve as serve_forever
from servicekit.telemetry import configure_tracing, instrument_engine


def deps_for(
    engine: Engine,
    bsn_pepper: bytes,
    provisioner: Provisioner | None = None,
    log_stripes: int = 16,
    access_log: AccessLogTrust | None = None,
    *,
    referral_service_client_id: str = "svc-referral",
) -> Deps:
    """The use cases' collaborators over one engine. Without ``access_log``, the log is
    chained with the key derived from the pepper and no checkpoints are published."""
    sessions = make_session_factory(engine)
    stripes = LogStripes(log_stripes)
    trust = access_log or AccessLogTrust.unconfigured(bsn_pepper)
    chain = trust.chain
    autocommit_sessions = make_session_factory(autocommit(engine))
    cache = DecisionCache()
    return Deps(
        uow=lambda: UnitOfWork(sessions, stripes, log_chain=chain, cache=cache),
        bsn_pepper=bsn_pepper,
        provisioner=provisioner,
        autocommit_uow=lambda: UnitOfWork(
            autocommit_sessions, stripes, driver_engine=engine, log_chain=chain, cache=cache
        ),
        access_log=trust,
        referral_service_client_id=referral_service_client_id,
    )


def access_log_trust(settings: Settings) -> AccessLogTrust:
    """The access log's keys and checkpoint store, as the settings name them."""
    return AccessLogTrust.from_files(
        settings.bsn_pepper.get_secret_value().encode(),
        hmac_keys_dir=settings.access_log_hmac_keys_dir,
        hmac_key_id=settings.access_log_hmac_key_id,
        signing_key_file=settings.access_log_signing_key_file,
        signing_key_id=settings.access_log_signing_key_id,
        public_keys_dir=settings.access_log_public_keys_dir,
        checkpoint_dir=settings.access_log_checkpoint_dir,
        every_entries=settings.access_log_checkpoint_every_entries,
        every_seconds=settings.access_log_checkpoint_every_seconds,
        journal_every_seconds=settings.access_log_journal_every_seconds,
        journal_keep_seconds=settings.access_log_journal_keep_seconds,
        verify_max_entries=settings.access_log_verify_max_entries,
    )


def _keycloak_admin(settings: Settings) -> KeycloakAdminClient | None:
    if not (settings.keycloak_admin_url and settings.keycloak_admin_client_id):
        return None
    return keycloak_admin(
        settings.keycloak_admin_url,
        settings.keycloak_realm,
        settings.keycloak_admin_realm,
        settings.keycloak_admin_client_id,
        settings.keycloak_admin_client_secret.get_secret_value(),
    )


def build_deps(settings: Settings) -> Deps:
    engine = make_engine(settings.database_url)
    instrument_engine(engine)
    admin = _keycloak_admin(settings)
    provisioner = KeycloakProvisioner(admin) if admin is not None else None
    return deps_for(
        engine,
        settings.bsn_pepper.get_secret_value().encode(),
        provisioner,
        settings.access_log_stripes,
        access_log_trust(settings),
        referral_service_client_id=settings.referral_service_client_id,
    )


def serve(settings: Settings) -> None:
    configure_logging("identity", settings.log_level)
    configure_tracing("identity")
    deps = build_deps(settings)
    running = create_server(settings, deps, verifier_for(settings))
    trust = deps.log_trust()
    if not trust.checkpoints:
        logging.getLogger("identity.access_log").warning("access_log_checkpoints_off")
        serve_forever(running, settings.shutdown_grace_seconds)
        return
    # The first checkpoint, published at start, also anchors entries chained before the
    # log was keyed; the last one, at shutdown, covers what this process wrote. In between,
    # the head journal signs the heads this process saw committed every journal interval.
    publisher = CheckpointPublisher(trust, deps.uow, deps.clock)
    journal = HeadJournal(trust, deps.clock)
    publisher.start()
    journal.start()
    try:
        serve_forever(running, settings.shutdown_grace_seconds)
    finally:
        journal.stop()
        publisher.stop()


def checkpoint_access_log(settings: Settings, args: list[str]) -> None:
    """``identity checkpoint-access-log``: signs and publishes the stripe heads now."""
    deps = build_deps(settings)
    trust = deps.log_trust()
    published = publish_checkpoint(trust, deps.uow, deps.clock)
    assert published is not None
    sys.stdout.write(json.dumps({"checkpoint": published[0]}) + "\n")


def bootstrap_care_group(settings: Settings, args: list[str]) -> None:
    """``identity bootstrap-care-group ID NAME [AGB]``: creates a tenant (operator only)."""
    if len(args) < 2:
        sys.stderr.write("usage: identity bootstrap-care-group ID NAME [AGB]\n")
        raise SystemExit(2)
    from identity.models import OrganisationType

    org = organisations.bootstrap_care_group(
        build_deps(settings),
        args[0],
        organisations.OrganisationInput(
            display_name=args[1],
            type=OrganisationType.CARE_GROUP,
            agb_code=args[2] if len(args) > 2 else "",
        ),
    )
    sys.stdout.write(json.dumps({"care_group": f"organisations/{org.id}"}) + "\n")


def seed_demo(settings: Settings, args: list[str]) -> None:
    """``identity seed-demo``: creates the demo region (idempotent)."""
    from identity import demo

    demo.seed(build_deps(settings), demo.realm_file(settings.demo_realm_file))
    sys.stdout.write(json.dumps({"seeded": "identity"}) + "\n")


def sync_people(settings: Settings, args: list[str]) -> None:
    """``identity sync-people``: makes the people directory match the realm's users (run it
    on a schedule; see identity.people)."""
    from identity import people

    admin = _keycloak_admin(settings)
    if admin is None:
        sys.stderr.write("sync-people needs IDENTITY_KEYCLOAK_ADMIN_URL and _CLIENT_ID\n")
        raise SystemExit(2)
    deps = build_deps(settings)
    report = people.sync_people(deps.uow, people.keycloak_people(admin), deps.clock())
    sys.stdout.write(json.dumps({"people": dataclasses.asdict(report)}) + "\n")


main = service_cli(
    "identity",
    Settings,
    serve,
    extra={
        "bootstrap-care-group": bootstrap_care_group,
        "seed-demo": seed_demo,
        "sync-people": sync_people,
        "checkpoint-access-log": checkpoint_access_log,
    },
)


if __name__ == "__main__":
    main()

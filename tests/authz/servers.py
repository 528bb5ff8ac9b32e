"""identity, referral, careplan and outcomes as real gRPC servers on real ports, in this
process, each on a fresh PostgreSQL database, each built by its own composition root
(``<service>.main.build_deps``) and checking real tokens of the test OIDC issuer.

identity is testkit's ``running_identity`` (migrated and seeded with the demo region);
referral gets the demo menu card (catalogue data, not patient data). Every patient fact
the table needs is then set up through the public APIs (see facts.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from carenet.careplan.v1 import careplan_service_pb2_grpc as careplan_grpc
from carenet.identity.v1 import identity_service_pb2_grpc as identity_grpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as outcomes_grpc
from carenet.referral.v1 import referral_service_pb2_grpc as referral_grpc
from testkit.database import fresh_database
from testkit.fixtures import IdentityService, running_identity
from testkit.idp import LocalIdp


@dataclass
class Platform:
    identity: IdentityService
    targets: dict[str, str]
    channels: dict[str, grpc.Channel]

    @property
    def identity_stub(self) -> identity_grpc.IdentityServiceStub:
        return identity_grpc.IdentityServiceStub(self.channels["identity"])

    @property
    def referral_stub(self) -> referral_grpc.ReferralServiceStub:
        return referral_grpc.ReferralServiceStub(self.channels["referral"])

    @property
    def careplan_stub(self) -> careplan_grpc.CarePlanServiceStub:
        return careplan_grpc.CarePlanServiceStub(self.channels["careplan"])

    @property
    def outcomes_stub(self) -> outcomes_grpc.OutcomesServiceStub:
        return outcomes_grpc.OutcomesServiceStub(self.channels["outcomes"])


def _common(url: str, idp: LocalIdp, identity_target: str) -> dict[str, Any]:
    return {
        "database_url": url,
        "oidc_issuer": idp.issuer,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "identity_target": identity_target,
        "log_level": "WARNING",
    }


@contextmanager
def running_platform(idp: LocalIdp) -> Iterator[Platform]:
    from careplan import main as careplan_main
    from careplan.config import Settings as CarePlanSettings
    from careplan.server import create_server as careplan_server
    from outcomes import main as outcomes_main
    from outcomes.config import Settings as OutcomesSettings
    from outcomes.server import create_server as outcomes_server
    from outcomes.use_cases import indicators as outcomes_indicators
    from referral import demo as referral_demo
    from referral import main as referral_main
    from referral.config import Settings as ReferralSettings
    from referral.server import create_server as referral_server
    from servicekit.auth import verifier_for
    from servicekit.db import make_engine, make_session_factory
    from servicekit.migrations import upgrade

    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(fresh_database(f"authz_{name}"))
            for name in ("referral", "careplan", "outcomes")
        }
        # one after the other: alembic's migration context is process-global
        identity = stack.enter_context(running_identity(idp, prefix="authz_identity"))
        for name, url in urls.items():
            upgrade(f"{name}.migrations", url)
        targets = {"identity": identity.target}

        referral_settings = ReferralSettings(
            **_common(urls["referral"], idp, identity.target),
            oidc_client_id="svc-referral",
            oidc_client_secret="svc-referral-secret",
            watch_poll_seconds=0.05,
        )
        engine = make_engine(urls["referral"])
        stack.callback(engine.dispose)
        referral_demo.seed(make_session_factory(engine))
        referral = referral_server(
            referral_settings,
            referral_main.build_deps(referral_settings),
            verifier_for(referral_settings),
        )

        careplan_settings = CarePlanSettings(
            **_common(urls["careplan"], idp, identity.target),
            oidc_client_id="svc-careplan",
            oidc_client_secret="svc-careplan-secret",
            consume_referral_events=False,
        )
        careplan = careplan_server(
            careplan_settings,
            careplan_main.build_deps(careplan_settings),
            verifier_for(careplan_settings),
        )

        outcomes_settings = OutcomesSettings(
            **_common(urls["outcomes"], idp, identity.target),
            oidc_client_id="svc-outcomes",
            oidc_client_secret="svc-outcomes-secret",
        )
        outcomes_deps = outcomes_main.build_deps(outcomes_settings)
        outcomes_indicators.load_definitions(outcomes_deps)
        outcomes = outcomes_server(
            outcomes_settings, outcomes_deps, verifier_for(outcomes_settings)
        )

        for name, running in (
            ("referral", referral),
            ("careplan", careplan),
            ("outcomes", outcomes),
        ):
            running.start()
            stack.callback(lambda r=running: r.stop(0.5).wait())  # type: ignore[misc]
            targets[name] = f"127.0.0.1:{running.port}"

        channels = {}
        for name, target in targets.items():
            channel = grpc.insecure_channel(target)
            stack.callback(channel.close)
            channels[name] = channel
        yield Platform(identity, targets, channels)

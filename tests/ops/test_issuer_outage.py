"""The OIDC issuer goes away and comes back: valid tokens are answered UNAVAILABLE (retry)
while it is away, never UNAUTHENTICATED, and calls succeed again within seconds of its
return. Both for the issuer's signing keys (JWKS) and for a service's own token."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rf_grpc
from servicekit.channels import ServiceAccountTokens
from servicekit.errors import Unavailable
from testkit.database import fresh_database
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess
from testkit.rpc import failure

from .conftest import cli, free_port, list_organisations, start_identity

PROFILE = rf.PatientProfile(
    conditions=["T90"], age=58, bmi=31.5, postcode="5611", municipality_code="GM0772"
)


def _port(idp: LocalIdp) -> int:
    return int(idp.issuer.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def _recovery(call: Callable[[], object], timeout: float = 15.0) -> float:
    """Seconds until ``call`` succeeds (every failure in between must be UNAVAILABLE)."""
    started = time.monotonic()
    while True:
        try:
            call()
            return time.monotonic() - started
        except grpc.RpcError as error:
            code = error.code()
            if code != grpc.StatusCode.UNAVAILABLE:
                raise AssertionError(failure(error)) from error
            if time.monotonic() - started > timeout:
                raise
            time.sleep(0.1)


@pytest.fixture
def own_idp(tmp_path: Path) -> Iterator[tuple[LocalIdp, Path]]:
    keys = tmp_path / "jwks.json"
    idp = LocalIdp.start(keys_file=keys, ttl_seconds=40)
    try:
        yield idp, keys
    finally:
        idp.stop()


def test_a_service_started_while_the_issuer_is_away_answers_unavailable_then_recovers(
    own_idp: tuple[LocalIdp, Path], identity_db: str
) -> None:
    idp, keys = own_idp
    token = idp.password_token("carenet-kis", "dr.jansen")
    port = _port(idp)
    idp.stop()
    identity = start_identity(idp.issuer, identity_db)
    channel = grpc.insecure_channel(identity.target)
    try:
        call = list_organisations(channel, token)
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as raised:
                call(5)
            seen = failure(raised.value)
            assert (seen.code, seen.reason) == (grpc.StatusCode.UNAVAILABLE, "JWKS_UNAVAILABLE")
            time.sleep(0.4)
        back = LocalIdp.start(keys_file=keys, port=port, ttl_seconds=40)
        try:
            # The next fetch after a failed one waits a second, not the 30 s cooldown.
            assert _recovery(lambda: call(5)) < 3.0
        finally:
            back.stop()
    finally:
        channel.close()
        identity.stop()


def test_a_failed_service_token_fetch_is_unavailable(own_idp: tuple[LocalIdp, Path]) -> None:
    idp, _ = own_idp
    tokens = ServiceAccountTokens(
        issuer=idp.issuer, client_id="svc-referral", client_secret="svc-referral-secret"
    )
    assert tokens()
    idp.stop()
    fresh = ServiceAccountTokens(
        issuer=idp.issuer, client_id="svc-referral", client_secret="svc-referral-secret"
    )
    with pytest.raises(Unavailable) as raised:
        fresh()
    assert raised.value.reason == "ISSUER_UNAVAILABLE"


def test_a_service_whose_own_token_expires_while_the_issuer_is_away_answers_unavailable(
    own_idp: tuple[LocalIdp, Path], identity_db: str
) -> None:
    idp, keys = own_idp
    port = _port(idp)
    identity = start_identity(idp.issuer, identity_db)
    with fresh_database("ops_referral") as referral_db:
        env = {
            "REFERRAL_OIDC_ISSUER": idp.issuer,
            "REFERRAL_GRPC_HOST": "127.0.0.1",
            "REFERRAL_GRPC_PORT": str(free_port()),
            "REFERRAL_DATABASE_URL": referral_db,
            "REFERRAL_IDENTITY_TARGET": identity.target,
            "REFERRAL_OIDC_CLIENT_SECRET": "svc-referral-secret",
        }
        cli("referral", "migrate", env)
        cli("referral", "seed-demo", env)
        referral = ServiceProcess("referral", env).start()
        channel = grpc.insecure_channel(referral.target)
        stub = rf_grpc.ReferralServiceStub(channel)
        user = idp.password_token("carenet-kis", "dr.jansen")

        def refer(offer: str, request_id: str) -> rf.Referral:
            created: rf.Referral = stub.CreateReferral(
                rf_rpc.CreateReferralRequest(
                    parent="patients/p-0001",
                    referral=rf.Referral(offer=offer, reason="DM2", profile=PROFILE),
                    request_id=request_id,
                ),
                metadata=(("authorization", f"Bearer {user}"),),
                timeout=10,
            )
            return created

        try:
            refer("offers/gli-beweegfit-cool", "ops-1")  # referral now holds a 40 s token
            warmed = time.monotonic()
            idp.stop()
            # It renews its token 30 s before expiry: from 10 s on it must ask the issuer.
            time.sleep(max(0.0, warmed + 11 - time.monotonic()))
            with pytest.raises(grpc.RpcError) as raised:
                refer("offers/gli-beweegfit-dietist-groep", "ops-2")
            seen = failure(raised.value)
            assert (seen.code, seen.reason) == (grpc.StatusCode.UNAVAILABLE, "ISSUER_UNAVAILABLE")
            back = LocalIdp.start(keys_file=keys, port=port, ttl_seconds=40)
            try:
                took = _recovery(lambda: refer("offers/gli-beweegfit-dietist-groep", "ops-2"))
                assert took < 3.0
            finally:
                back.stop()
        finally:
            channel.close()
            referral.stop()
            identity.stop()

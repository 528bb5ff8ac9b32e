"""TLS between services with a CA made here, and client-side balancing over two identity
instances behind one target."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rf_grpc
from servicekit.auth import verifier_for
from servicekit.channels import ChannelSettings, open_channel
from testkit.database import fresh_database
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.tls import Ca, Issued

from .conftest import TlsServiceProcess, cli, free_port, identity_env, start_identity


@dataclass
class TlsIdentity:
    target: str
    ca: Ca
    client: Issued
    rogue_client: Issued


@pytest.fixture(scope="module")
def tls_identity(
    local_idp: LocalIdp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsIdentity]:
    """identity's own server in this process, serving mutual TLS from files named by the
    IDENTITY_TLS_* settings (as the chart mounts them)."""
    from identity.config import Settings
    from identity.main import build_deps
    from identity.server import create_server

    folder = tmp_path_factory.mktemp("tls")
    ca, rogue = Ca(folder, "carenet-ca"), Ca(folder, "rogue-ca")
    server, client = ca.issue("identity"), ca.issue("referral")
    with fresh_database("ops_tls") as url:
        env = identity_env(local_idp.issuer, url)
        cli("identity", "migrate", env)
        cli("identity", "seed-demo", env)
        settings = Settings(
            database_url=url,
            oidc_issuer=local_idp.issuer,
            grpc_host="127.0.0.1",
            grpc_port=0,
            bsn_pepper="ops-pepper",  # type: ignore[arg-type]
        )
        with pytest.MonkeyPatch.context() as monkey:
            monkey.setenv("IDENTITY_TLS_CERT_FILE", str(server.cert))
            monkey.setenv("IDENTITY_TLS_KEY_FILE", str(server.key))
            monkey.setenv("IDENTITY_TLS_CLIENT_CA_FILE", str(ca.file))
            running = create_server(settings, build_deps(settings), verifier_for(settings))
        running.start()
        try:
            yield TlsIdentity(f"127.0.0.1:{running.port}", ca, client, rogue.issue("intruder"))
        finally:
            running.stop(1).wait()


def _list(channel: grpc.Channel, token: str) -> id_rpc.ListOrganisationsResponse:
    reply: id_rpc.ListOrganisationsResponse = id_grpc.IdentityServiceStub(
        channel
    ).ListOrganisations(
        id_rpc.ListOrganisationsRequest(page_size=1), metadata=bearer(token), timeout=3
    )
    return reply


def test_a_client_with_a_certificate_of_the_ca_is_served(
    tls_identity: TlsIdentity, tokens: Tokens
) -> None:
    settings = ChannelSettings(
        tls_ca_file=str(tls_identity.ca.file),
        tls_cert_file=str(tls_identity.client.cert),
        tls_key_file=str(tls_identity.client.key),
    )
    with open_channel(tls_identity.target, settings=settings) as channel:
        assert _list(channel, tokens.user("dr.jansen")).organisations


@pytest.mark.parametrize("client", ["none", "rogue", "plaintext", "unverified-server"])
def test_a_client_without_a_valid_certificate_or_without_tls_cannot_call(
    tls_identity: TlsIdentity, tokens: Tokens, client: str
) -> None:
    ca = str(tls_identity.ca.file)
    rogue = tls_identity.rogue_client
    channels = {
        "none": lambda: open_channel(tls_identity.target, settings=ChannelSettings(tls_ca_file=ca)),
        "rogue": lambda: open_channel(
            tls_identity.target,
            settings=ChannelSettings(
                tls_ca_file=ca, tls_cert_file=str(rogue.cert), tls_key_file=str(rogue.key)
            ),
        ),
        "plaintext": lambda: grpc.insecure_channel(tls_identity.target),
        # A client that trusts only the rogue CA refuses the server's certificate.
        "unverified-server": lambda: open_channel(
            tls_identity.target,
            settings=ChannelSettings(
                tls_ca_file=str(rogue.cert.parent / "rogue-ca.pem"),
                tls_cert_file=str(tls_identity.client.cert),
                tls_key_file=str(tls_identity.client.key),
            ),
        ),
    }
    with channels[client]() as channel, pytest.raises(grpc.RpcError) as raised:
        _list(channel, tokens.user("dr.jansen"))
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_round_robin_over_one_target_reaches_both_instances(
    local_idp: LocalIdp, identity_db: str
) -> None:
    ports = [free_port(), free_port()]
    processes = [
        start_identity(local_idp.issuer, identity_db, grpc_port=str(p), max_workers="4")
        for p in ports
    ]
    try:
        target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
        with open_channel(target, settings=ChannelSettings()) as channel:
            stub = id_grpc.IdentityServiceStub(channel)
            for _ in range(20):
                with pytest.raises(grpc.RpcError):  # no token: each instance logs it
                    stub.ListOrganisations(id_rpc.ListOrganisationsRequest(), timeout=3)
    finally:
        for process in processes:
            process.stop()
    answered = []
    for process in processes:
        events = [json.loads(line) for line in process.lines if line.startswith("{")]
        answered.append(
            sum(
                1
                for e in events
                if e.get("event") == "rpc_error"
                and str(e.get("rpc", "")).endswith("/ListOrganisations")
            )
        )
    assert sum(answered) == 20
    assert min(answered) >= 5, answered  # round-robin: about 10 each


def test_services_call_each_other_over_mutual_tls_from_their_settings_alone(
    local_idp: LocalIdp, identity_db: str, tokens: Tokens, tmp_path: Path
) -> None:
    """identity and referral as processes, each with its own certificate of one CA: referral
    serves TLS and asks identity over mutual TLS, configured by REFERRAL_TLS_* alone."""
    ca = Ca(tmp_path, "carenet-ca")

    def tls_env(name: str) -> dict[str, str]:
        issued = ca.issue(name)
        prefix = name.upper()
        return {
            f"{prefix}_TLS_CERT_FILE": str(issued.cert),
            f"{prefix}_TLS_KEY_FILE": str(issued.key),
            f"{prefix}_TLS_CLIENT_CA_FILE": str(ca.file),
            f"{prefix}_TLS_CA_FILE": str(ca.file),
            f"{prefix}_HEALTH_PORT": str(free_port()),
        }

    identity = TlsServiceProcess(
        "identity", identity_env(local_idp.issuer, identity_db) | tls_env("identity")
    ).start()
    try:
        with fresh_database("ops_tls_referral") as referral_db:
            env = {
                "REFERRAL_OIDC_ISSUER": local_idp.issuer,
                "REFERRAL_GRPC_HOST": "127.0.0.1",
                "REFERRAL_GRPC_PORT": "0",
                "REFERRAL_DATABASE_URL": referral_db,
                "REFERRAL_IDENTITY_TARGET": identity.target,
                "REFERRAL_OIDC_CLIENT_SECRET": "svc-referral-secret",
            }
            cli("referral", "migrate", env)
            cli("referral", "seed-demo", env)
            referral = TlsServiceProcess("referral", env | tls_env("referral")).start()
            caller = ca.issue("kis-gateway")
            settings = ChannelSettings(
                tls_ca_file=str(ca.file),
                tls_cert_file=str(caller.cert),
                tls_key_file=str(caller.key),
            )
            try:
                with open_channel(referral.target, settings=settings) as channel:
                    created = rf_grpc.ReferralServiceStub(channel).CreateReferral(
                        rf_rpc.CreateReferralRequest(
                            parent="patients/p-0001",
                            referral=rf.Referral(
                                offer="offers/gli-beweegfit-cool",
                                reason="DM2",
                                profile=rf.PatientProfile(
                                    conditions=["T90"], age=58, bmi=31.5, postcode="5611"
                                ),
                            ),
                            request_id="ops-tls-1",
                        ),
                        metadata=bearer(tokens.user("dr.jansen")),
                        timeout=15,
                    )
                # Authorized by identity, which referral reached over mutual TLS.
                assert created.name.startswith("referrals/") or "/referrals/" in created.name
                # A plaintext caller gets nothing from either.
                for target in (referral.target, identity.target):
                    with (
                        grpc.insecure_channel(target) as plain,
                        pytest.raises(grpc.RpcError) as refused,
                    ):
                        _list(plain, tokens.user("dr.jansen"))
                    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            finally:
                referral.stop()
    finally:
        identity.stop()


@pytest.mark.parametrize("max_age", ["1", "0"])
def test_servers_close_connections_at_their_maximum_age_without_failing_calls(
    local_idp: LocalIdp, identity_db: str, tokens: Tokens, max_age: str
) -> None:
    """With IDENTITY_MAX_CONNECTION_AGE_SECONDS the server ends each connection after that
    age (GOAWAY): the client reconnects (and re-resolves its target) and no call fails.
    Without it, one connection lasts."""
    identity = start_identity(
        local_idp.issuer,
        identity_db,
        max_connection_age_seconds=max_age,
        max_connection_age_grace_seconds="1",
    )
    states: list[str] = []
    try:
        with open_channel(identity.target, settings=ChannelSettings()) as channel:
            channel.subscribe(lambda state: states.append(state.name), try_to_connect=True)
            token = tokens.user("dr.jansen")
            deadline = time.monotonic() + 4.0
            calls = 0
            while time.monotonic() < deadline:
                _list(channel, token)
                calls += 1
                time.sleep(0.02)
    finally:
        identity.stop()
    assert calls > 50
    reconnects = sum(1 for a, b in itertools.pairwise(states) if a == "READY" and b != "READY")
    if max_age == "1":
        assert reconnects >= 2, states
    else:
        assert reconnects == 0, states

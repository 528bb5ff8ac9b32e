"""carenet_client over TLS to a real service: identity serving mutual TLS from its
IDENTITY_TLS_* files (as the chart mounts them), with a CA made here."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from carenet.identity.v1 import identity_service_pb2
from carenet_client import (
    Carenet,
    CarenetError,
    ClientCredentials,
    TlsConfig,
    from_rpc_error,
    make_channel,
)
from testkit import processes
from testkit.database import drop_database
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess
from testkit.tls import Ca, Issued


@dataclass(frozen=True)
class TlsIdentity:
    target: str
    ca: Ca
    client: Issued
    rogue: Issued


@pytest.fixture(scope="module")
def tls_identity(
    local_idp: LocalIdp, tmp_path_factory: pytest.TempPathFactory, lp: Any
) -> Iterator[TlsIdentity]:
    template = lp.demo_template(local_idp, tmp_path_factory)
    folder = tmp_path_factory.mktemp("tls")
    ca, rogue_ca = Ca(folder, "carenet-ca"), Ca(folder, "rogue-ca")
    server, client = ca.issue("identity", dns="identity.carenet.internal"), ca.issue("kis")
    database = lp.copy_database(template.databases["identity"])
    run_dir = folder / "run"
    shutil.copytree(template.run_dir, run_dir)
    port = lp.free_ports(1)[0]
    env = lp.env_for(
        lp.run_local(), "identity", database, run_dir, local_idp.issuer, {"identity": port}
    )
    env |= {
        "IDENTITY_TLS_CERT_FILE": str(server.cert),
        "IDENTITY_TLS_KEY_FILE": str(server.key),
        "IDENTITY_TLS_CLIENT_CA_FILE": str(ca.file),
    }
    tls = TlsConfig(ca_file=str(ca.file), cert_file=str(client.cert), key_file=str(client.key))

    def wait_serving_over_tls(target: str, timeout: float = 30.0, service: str = "") -> None:
        deadline = time.monotonic() + timeout
        with make_channel(target, tls) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1:
                        return
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.1)

    # ServiceProcess waits for SERVING over plaintext; this port serves TLS only
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(processes, "wait_serving", wait_serving_over_tls)
        process = ServiceProcess("identity", env).start()
    try:
        yield TlsIdentity(f"127.0.0.1:{port}", ca, client, rogue_ca.issue("intruder"))
    finally:
        process.stop()
        drop_database(database)


def organisations(client: Carenet) -> list[str]:
    try:
        reply = client.identity_stub.ListOrganisations(
            identity_service_pb2.ListOrganisationsRequest(page_size=5),
            metadata=client.metadata(),
            timeout=10,
        )
    except grpc.RpcError as raw:
        raise from_rpc_error(raw) from None
    return [o.name for o in reply.organisations]


def kis(local_idp: LocalIdp, target: str, tls: TlsConfig | None) -> Carenet:
    return Carenet(
        credentials=ClientCredentials(local_idp.issuer, "carenet-kis", "carenet-kis-secret"),
        targets={"identity": target},
        tls=tls,
    )


def test_mutual_tls_with_the_ca_file_and_a_client_certificate(
    tls_identity: TlsIdentity, local_idp: LocalIdp
) -> None:
    tls = TlsConfig(
        ca_file=str(tls_identity.ca.file),
        cert_file=str(tls_identity.client.cert),
        key_file=str(tls_identity.client.key),
    )
    with kis(local_idp, tls_identity.target, tls) as client:
        assert organisations(client)
    named = TlsConfig(
        ca_file=str(tls_identity.ca.file),
        cert_file=str(tls_identity.client.cert),
        key_file=str(tls_identity.client.key),
        server_name="identity.carenet.internal",
    )
    with kis(local_idp, tls_identity.target, named) as client:
        assert organisations(client), "the name in the server's certificate, not the address"


@pytest.mark.parametrize(
    "case", ["plaintext", "no client certificate", "rogue certificate", "other CA"]
)
def test_without_the_right_certificates_nothing_is_served(
    tls_identity: TlsIdentity, local_idp: LocalIdp, case: str
) -> None:
    ca, client, rogue = str(tls_identity.ca.file), tls_identity.client, tls_identity.rogue
    tls = {
        "plaintext": None,
        "no client certificate": TlsConfig(ca_file=ca),
        "rogue certificate": TlsConfig(
            ca_file=ca, cert_file=str(rogue.cert), key_file=str(rogue.key)
        ),
        "other CA": TlsConfig(
            ca_file=str(rogue.cert.parent / "rogue-ca.pem"),
            cert_file=str(client.cert),
            key_file=str(client.key),
        ),
    }[case]
    with (
        kis(local_idp, tls_identity.target, tls) as client_,
        pytest.raises(CarenetError) as refused,
    ):
        organisations(client_)
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE


def test_a_client_certificate_needs_its_key() -> None:
    with pytest.raises(ValueError, match="both"):
        TlsConfig(cert_file="kis.crt").credentials()

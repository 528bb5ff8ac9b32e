"""The restore drill: every service's database dumped with pg_dump, restored with pg_restore
into fresh databases, the services started on the restored databases; the access log
verifies against the checkpoints published before the dump (which live outside the
database), every table holds the same rows, and the restored platform serves calls."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, inspect, text

from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rf_grpc
from testkit.database import fresh_database
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess

from .conftest import cli

SERVICES = ("identity", "referral", "careplan", "outcomes")
PROFILE = rf.PatientProfile(
    conditions=["T90"], age=58, bmi=31.5, postcode="5611", municipality_code="GM0772"
)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _row_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            return {
                table: int(connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())
                for table in tables
            }
    finally:
        engine.dispose()


def _access_log_keys(folder: Path) -> dict[str, str]:
    """identity's access-log settings with a dedicated chain key, a checkpoint signing key
    and a checkpoint store outside the database, as in production."""
    chain = folder / "chain"
    public = folder / "public"
    checkpoints = folder / "checkpoints"
    for directory in (chain, public, checkpoints):
        directory.mkdir()
    (chain / "chain-1").write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    key = Ed25519PrivateKey.generate()
    signing = folder / "sign-1.pem"
    signing.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (public / "sign-1.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return {
        "ACCESS_LOG_HMAC_KEYS_DIR": str(chain),
        "ACCESS_LOG_HMAC_KEY_ID": "chain-1",
        "ACCESS_LOG_SIGNING_KEY_FILE": str(signing),
        "ACCESS_LOG_SIGNING_KEY_ID": "sign-1",
        "ACCESS_LOG_PUBLIC_KEYS_DIR": str(public),
        "ACCESS_LOG_CHECKPOINT_DIR": str(checkpoints),
    }


def _env(name: str, issuer: str, url: str, identity: str, extra: dict[str, str]) -> dict[str, str]:
    prefix = name.upper()
    values = {
        "OIDC_ISSUER": issuer,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": "0",
        "DATABASE_URL": url,
        **extra,
    }
    if name == "identity":
        values["BSN_PEPPER"] = "drill-pepper"
    else:
        values["IDENTITY_TARGET"] = identity
        values["OIDC_CLIENT_SECRET"] = f"svc-{name}-secret"
    if name == "careplan":
        values["REFERRAL_TARGET"] = extra.get("REFERRAL_TARGET", "127.0.0.1:1")
    return {f"{prefix}_{k}": v for k, v in values.items()}


class Platform:
    """The four services as processes over the given databases."""

    def __init__(self, issuer: str, urls: dict[str, str], keys: dict[str, str]) -> None:
        self.processes: dict[str, ServiceProcess] = {}
        identity = ServiceProcess(
            "identity", _env("identity", issuer, urls["identity"], "", keys)
        ).start()
        self.processes["identity"] = identity
        referral = ServiceProcess(
            "referral", _env("referral", issuer, urls["referral"], identity.target, {})
        ).start()
        self.processes["referral"] = referral
        for name in ("careplan", "outcomes"):
            extra = {"REFERRAL_TARGET": referral.target} if name == "careplan" else {}
            self.processes[name] = ServiceProcess(
                name, _env(name, issuer, urls[name], identity.target, extra)
            ).start()

    def target(self, name: str) -> str:
        return self.processes[name].target

    def stop(self) -> None:
        for name in reversed(SERVICES):
            if name in self.processes:
                self.processes[name].stop()


@pytest.fixture
def databases() -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    with ExitStack() as stack:
        source = {s: stack.enter_context(fresh_database(f"drill_{s}")) for s in SERVICES}
        restored = {s: stack.enter_context(fresh_database(f"drill_{s}_restored")) for s in SERVICES}
        yield source, restored


def _verify(target: str, token: str) -> id_rpc.VerifyAccessLogResponse:
    with grpc.insecure_channel(target) as channel:
        reply: id_rpc.VerifyAccessLogResponse = id_grpc.IdentityServiceStub(
            channel
        ).VerifyAccessLog(id_rpc.VerifyAccessLogRequest(), metadata=bearer(token), timeout=30)
        return reply


def _refer(target: str, token: str, offer: str, request_id: str) -> rf.Referral:
    with grpc.insecure_channel(target) as channel:
        created: rf.Referral = rf_grpc.ReferralServiceStub(channel).CreateReferral(
            rf_rpc.CreateReferralRequest(
                parent="patients/p-0001",
                referral=rf.Referral(offer=offer, reason="DM2", profile=PROFILE),
                request_id=request_id,
            ),
            metadata=bearer(token),
            timeout=15,
        )
        return created


@pytest.mark.slow
def test_restore_drill(
    local_idp: LocalIdp,
    tokens: Tokens,
    databases: tuple[dict[str, str], dict[str, str]],
    tmp_path: Path,
) -> None:
    source, restored = databases
    keys = _access_log_keys(tmp_path)
    for name in SERVICES:
        env = _env(
            name, local_idp.issuer, source[name], "127.0.0.1:1", keys if name == "identity" else {}
        )
        cli(name, "migrate", env)
        cli(name, "seed-demo", env)
    # Traffic that writes to identity's access log and referral's outbox.
    platform = Platform(local_idp.issuer, source, keys)
    try:
        gp = tokens.user("dr.jansen")
        _refer(platform.target("referral"), gp, "offers/gli-beweegfit-cool", "drill-1")
        _refer(platform.target("referral"), gp, "offers/gli-beweegfit-dietist-groep", "drill-2")
        before = _verify(platform.target("identity"), tokens.user("auditor.dekker"))
    finally:
        platform.stop()  # stopping identity publishes a last checkpoint
    assert before.intact and before.entries_checked > 0
    counts = {name: _row_counts(source[name]) for name in SERVICES}
    assert counts["referral"]["referrals"] >= 2

    # Dump every database and restore it into a fresh, empty one.
    for name in SERVICES:
        dump = tmp_path / f"{name}.dump"
        subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", _libpq(source[name])],
            check=True,
            capture_output=True,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )
        subprocess.run(
            [
                "pg_restore",
                "--no-owner",
                "--exit-on-error",
                f"--dbname={_libpq(restored[name])}",
                str(dump),
            ],
            check=True,
            capture_output=True,
        )
        assert _row_counts(restored[name]) == counts[name], name

    # The services on the restored databases: the log verifies against the checkpoints
    # published before the dump, and the platform serves.
    platform = Platform(local_idp.issuer, restored, keys)
    try:
        after = _verify(platform.target("identity"), tokens.user("auditor.dekker"))
        assert after.intact, list(after.problems)
        assert after.checkpoint_store_configured and after.checkpoints_verified > 0
        assert after.entries_checked >= before.entries_checked
        # A retried create on the restored data duplicates nothing; a new one works.
        again = _refer(platform.target("referral"), gp, "offers/gli-beweegfit-cool", "drill-1")
        assert again.name
        _refer(platform.target("referral"), gp, "offers/gm-eindhoven-wandelgroep", "drill-3")
    finally:
        platform.stop()
    assert _row_counts(restored["referral"])["referrals"] == counts["referral"]["referrals"] + 1

"""The outcomes demo as ``make run`` starts it (identity and outcomes as processes on
PostgreSQL, migrated and demo-seeded through their CLIs), driven the way an insurer's reporting client
drives it: client-credentials token, grpcurl as in the README, then the gRPC stub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from testkit.database import fresh_database
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess
from testkit.rpc import failure

REPO = Path(__file__).resolve().parents[2]


def _cli(name: str, command: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", f"{name}.main", command],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=180,
    )


def _ts(text: str) -> Timestamp:
    out = Timestamp()
    out.FromJsonString(text)
    return out


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Fresh databases for identity and outcomes."""
    with fresh_database("e2e_identity") as identity, fresh_database("e2e_outcomes") as outcomes:
        yield identity, outcomes


@pytest.mark.e2e
def test_the_insurer_reads_its_demo_report_and_evaluates_its_contract(
    databases: tuple[str, str], local_idp: LocalIdp
) -> None:
    identity_env = {
        "IDENTITY_DATABASE_URL": databases[0],
        "IDENTITY_OIDC_ISSUER": local_idp.issuer,
        "IDENTITY_GRPC_HOST": "127.0.0.1",
        "IDENTITY_GRPC_PORT": "0",
        "IDENTITY_BSN_PEPPER": "e2e-pepper",
    }
    _cli("identity", "migrate", identity_env)
    _cli("identity", "seed-demo", identity_env)
    identity = ServiceProcess("identity", identity_env).start()
    try:
        outcomes_env = {
            "OUTCOMES_DATABASE_URL": databases[1],
            "OUTCOMES_OIDC_ISSUER": local_idp.issuer,
            "OUTCOMES_GRPC_HOST": "127.0.0.1",
            "OUTCOMES_GRPC_PORT": "0",
            "OUTCOMES_IDENTITY_TARGET": identity.target,
            "OUTCOMES_OIDC_CLIENT_ID": "svc-outcomes",
            "OUTCOMES_OIDC_CLIENT_SECRET": "svc-outcomes-secret",
        }
        _cli("outcomes", "migrate", outcomes_env)
        _cli("outcomes", "seed-demo", outcomes_env)
        outcomes = ServiceProcess("outcomes", outcomes_env).start()
        try:
            token = local_idp.client_token("carenet-insurer")
            listed = subprocess.run(
                [
                    str(REPO / ".venv" / "bin" / "grpcurl"),
                    "-plaintext",
                    "-H",
                    f"authorization: Bearer {token}",
                    "-d",
                    json.dumps({"contract": "contracts/vgz-zuidoost-2025", "page_size": 1}),
                    outcomes.target,
                    "carenet.outcomes.v1.OutcomesService/ListReports",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert listed.returncode == 0, listed.stderr
            report_name = json.loads(listed.stdout)["reports"][0]["name"]
            metadata = (("authorization", f"Bearer {token}"),)
            with grpc.insecure_channel(outcomes.target) as channel:
                stub = rpc_grpc.OutcomesServiceStub(channel)
                cells = list(
                    stub.StreamReport(
                        rpc.StreamReportRequest(name=report_name), metadata=metadata, timeout=30
                    )
                )
                totals = [
                    c
                    for c in cells
                    if not c.practice and not c.age_band and c.sex == pb.SEX_UNSPECIFIED
                ]
                assert {c.indicator for c in totals} >= {"DM2_HBA1C_MEASURED", "COPD_EXACERBATIONS"}
                # A care-group total is published unless a count or complement it would show
                # is 1-9 (the small-cell rule, outcomes README); a suppressed cell carries no
                # numbers, so a zero is never a hidden count.
                assert any(c.suppression == pb.SUPPRESSION_NONE for c in totals)
                for cell in totals:
                    assert cell.suppression != pb.SUPPRESSION_UNSPECIFIED
                    if cell.suppression != pb.SUPPRESSION_NONE:
                        assert (cell.numerator, cell.denominator) == (0, 0)
                evaluation = stub.EvaluateContract(
                    rpc.EvaluateContractRequest(
                        contract="contracts/vgz-zuidoost-2025",
                        period_start=_ts("2025-01-01T00:00:00Z"),
                        period_end=_ts("2026-01-01T00:00:00Z"),
                    ),
                    metadata=metadata,
                    timeout=30,
                )
                assert evaluation.report == report_name and len(evaluation.lines) == 7
                with pytest.raises(grpc.RpcError) as caught:
                    stub.ListMeasurements(
                        rpc.ListMeasurementsRequest(parent="patients/p-0001"),
                        metadata=metadata,
                        timeout=10,
                    )
                assert failure(caught.value).reason == "INSURER_NO_PATIENT_DATA"
                # A GP of the demo region ingests through identity's real decisions.
                gp = (
                    (
                        "authorization",
                        f"Bearer {local_idp.password_token('carenet-kis', 'dr.jansen')}",
                    ),
                )
                row = rpc.MeasurementRow(
                    patient="patients/p-0001",
                    code="HBA1C",
                    value=51,
                    unit="mmol/mol",
                    measure_time=_ts("2025-09-01T08:00:00Z"),
                    source=pb.MeasurementSource(
                        kind=pb.SOURCE_KIND_LAB, organisation="organisations/lab-eindhoven"
                    ),
                    source_record_id="e2e-1",
                )
                other = rpc.MeasurementRow()
                other.CopyFrom(row)
                other.patient, other.source_record_id = "patients/p-0003", "e2e-2"
                reply = stub.IngestMeasurements(
                    iter([rpc.IngestMeasurementsRequest(rows=[row, other])]),
                    metadata=gp,
                    timeout=30,
                )
                assert reply.accepted == 1 and [r.reason for r in reply.results] == [
                    "NO_CARE_RELATIONSHIP"
                ]
        finally:
            outcomes.stop()
    finally:
        identity.stop()

"""``outcomes import FILE.csv``: the same ingest from a CSV file, with progress and a
summary of rejects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes.config import Settings
from testkit.fixtures import IdentityService, Tokens, bearer

from .support import enrolment_request, register_patients


def test_the_cli_imports_a_csv_file_and_summarises_the_rejects(
    tmp_path: Path,
    settings: Settings,
    outcomes_target: str,
    stub: rpc_grpc.OutcomesServiceStub,
    identity_service: IdentityService,
    tokens: Tokens,
) -> None:
    token = tokens.user("dr.jansen")
    ids = register_patients(identity_service, "csv", 3)
    stub.BatchCreateEnrolments(
        rpc.BatchCreateEnrolmentsRequest(requests=[enrolment_request(p) for p in ids]),
        metadata=bearer(token),
        timeout=30,
    )
    lines = ["patient,code,value,unit,measure_time,source_kind,source_org,source_record_id"]
    for n in range(30):
        lines.append(
            f"{ids[n % 3]},HBA1C,{45 + n},mmol/mol,2025-05-0{1 + n % 9}T09:00:00+02:00,LAB,lab-eindhoven,csv-{n}"
        )
    lines.append(
        f"{ids[0]},HBA1C,abc,mmol/mol,2025-05-01T09:00:00+02:00,LAB,lab-eindhoven,csv-bad-1"
    )
    lines.append(f"{ids[0]},GLUCOSE,5,mmol/L,2025-05-01T09:00:00+02:00,LAB,lab-eindhoven,csv-bad-2")
    lines.append("p-0003,HBA1C,50,mmol/mol,2025-05-01T09:00:00+02:00,LAB,lab-eindhoven,csv-bad-3")
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "OUTCOMES_DATABASE_URL": settings.database_url,
        "OUTCOMES_OIDC_ISSUER": settings.oidc_issuer,
        "OUTCOMES_IDENTITY_TARGET": settings.identity_target,
        "OUTCOMES_IMPORT_TOKEN": token,
    }
    done = subprocess.run(
        [sys.executable, "-m", "outcomes.main", "import", str(path), "--target", outcomes_target],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["accepted"], summary["rejected"]) == (33, 30, 3)
    assert summary["rejects_by_reason"] == {
        "OUT_OF_RANGE": 1,
        "UNKNOWN_CODE": 1,
        "NO_CARE_RELATIONSHIP": 1,
    }
    assert [r["line"] for r in summary["first_rejects"]] == [32, 33, 34]
    assert "33/33 rows" in done.stderr

    again = subprocess.run(
        [sys.executable, "-m", "outcomes.main", "import", str(path), "--target", outcomes_target],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (json.loads(again.stdout)["duplicates"], json.loads(again.stdout)["corrected"]) == (
        30,
        0,
    )

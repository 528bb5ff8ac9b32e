"""``make run``, smoke-tested: every service starts on the embedded PostgreSQL with the local
issuer and the demo data, logs to its file, and the grpcurl examples the banner prints really
work; PostgreSQL is stopped with the services."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_the_local_platform_comes_up_and_the_printed_examples_work(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "run_local.py"),
            "--smoke",
            "--run-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "carenet.identity.v1.IdentityService" in output
    assert '"status": "SERVING"' in output
    assert '"decision": "DECISION_PERMIT"' in output
    assert (tmp_path / "postgres" / "PG_VERSION").exists()
    assert not (tmp_path / "postgres" / "postmaster.pid").exists(), "PostgreSQL was stopped"
    assert '"event": "server_started"' in (tmp_path / "identity.log").read_text()
    services = {p.parent.name for p in (REPO / "services").glob("*/pyproject.toml")}
    if "referral" in services:
        assert "GLI CooL" in output, "the menu card example found the demo GLI offer"
    if "outcomes" in services:
        assert "reports/" in output, "the insurer listed its contract's report"
    if "careplan" in services:
        assert "patients/p-0001/referrals/" in output, "the demo plan links the demo referral"

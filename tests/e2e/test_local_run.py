"""``make run``, smoke-tested: every service starts on the embedded PostgreSQL with the local
issuer and the demo data, logs to its file, and the grpcurl examples the banner prints really
work; PostgreSQL is stopped with the services."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A run directory outside pytest's temporary root, which pytest makes private to its
    owner again whenever a session starts (the embedded PostgreSQL runs as a user of its own
    and must reach its data)."""
    folder = Path(tempfile.mkdtemp(prefix="carenet-run-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.e2e
def test_the_local_platform_comes_up_and_the_printed_examples_work(run_dir: Path) -> None:
    tmp_path = run_dir
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
    if "fhir" in services:
        assert "[smoke] fhir CarePlan read: exit 0" in output, "the banner's FHIR curl works"

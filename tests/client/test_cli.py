"""The ``carenet`` command against the real services, as a KIS and an insurer run it."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testkit.idp import LocalIdp

CARENET = str(Path(sys.executable).parent / "carenet")
DR_JANSEN = "be21ba23-a345-5af6-9768-5903b37b0418"
HEADER = "patient,code,value,unit,measure_time,source_kind,source_org,source_record_id\n"


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [CARENET, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def env(platform: Any, local_idp: LocalIdp, tmp_path: Path) -> dict[str, str]:
    """Only an endpoint per service and the issuer: no credentials yet."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARENET_")}
    base |= {
        "HOME": str(tmp_path),
        "CARENET_ISSUER": local_idp.issuer,
        "CARENET_PLAINTEXT": "1",
    }
    base |= {f"CARENET_{name.upper()}_TARGET": t for name, t in platform.targets.items()}
    return base


def test_login_stores_a_profile_only_its_owner_reads_and_the_commands_use_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    refused = run(env, "offers", "find", "--condition", "T90", check=False)
    assert refused.returncode == 2
    assert "CARENET_CLIENT_ID" in refused.stderr

    wrong = run(env, "login", "--client-id", "carenet-kis", "--client-secret", "wrong", check=False)
    assert wrong.returncode == 1
    assert not (tmp_path / ".config" / "carenet" / "profiles.json").exists()

    run(
        env,
        "login",
        "--client-id",
        "carenet-kis",
        "--client-secret",
        "carenet-kis-secret",
        "--on-behalf-of",
        DR_JANSEN,
    )
    profile = tmp_path / ".config" / "carenet" / "profiles.json"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert json.loads(profile.read_text())["default"]["client_id"] == "carenet-kis"

    found = run(
        env,
        "offers",
        "find",
        "--condition",
        "T90",
        "--age",
        "58",
        "--postcode",
        "5612",
        "--limit",
        "2",
    )
    lines = [json.loads(line) for line in found.stdout.splitlines()]
    assert len(lines) == 2
    assert all(line["offer"]["name"].startswith("offers/") for line in lines)

    people = run(env, "people", "lookup", DR_JANSEN, "no-such-user").stdout.splitlines()
    assert [json.loads(line)["organisation"] for line in people] == ["organisations/gp-de-linde"]

    token = run(env, "token").stdout.strip()
    assert token.count(".") == 2, "a JWT for grpcurl, from the stored profile"

    listed = run(env, "referrals", "list", "--patient", "p-0001")
    assert any("patients/p-0001/referrals/" in line for line in listed.stdout.splitlines())

    run(env, "logout")
    assert "default" not in json.loads(profile.read_text())


def kis_env(env: dict[str, str]) -> dict[str, str]:
    return env | {
        "CARENET_CLIENT_ID": "carenet-kis",
        "CARENET_CLIENT_SECRET": "carenet-kis-secret",
        "CARENET_ON_BEHALF_OF": DR_JANSEN,
    }


def test_referrals_create_then_watch_from_a_cursor(env: dict[str, str]) -> None:
    kis = kis_env(env)
    before = run(kis, "referrals", "watch", "--from", "0", "--no-follow").stdout.splitlines()
    last = json.loads(before[-1])["cursor"]
    created = run(
        kis,
        "referrals",
        "create",
        "--patient",
        "p-0002",
        "--offer",
        "gli-beweegfit-dietist-groep",
        "--reason",
        "nutrition course",
        "--request-id",
        "cli-test-1",
    )
    name = json.loads(created.stdout)["name"]
    after = run(kis, "referrals", "watch", "--from", str(last), "--no-follow").stdout.splitlines()
    events = [json.loads(line) for line in after]
    assert [e["referral"] for e in events] == [name]
    assert int(events[0]["cursor"]) > int(last)

    again = run(
        kis, "referrals", "create", "--patient", "p-0002", "--offer",
        "gli-beweegfit-dietist-groep", "--reason", "other words", check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert "ALREADY_EXISTS DUPLICATE_OPEN_REFERRAL" in again.stderr
    assert name in again.stderr, "the metadata names the open referral"


def test_measurements_import_summarises_and_writes_the_rejects(
    env: dict[str, str], tmp_path: Path
) -> None:
    kis = kis_env(env)
    source = tmp_path / "lab.csv"
    rows = [
        "p-0001,HBA1C,50,mmol/mol,2025-06-01T09:00:00+02:00,LAB,gp-de-linde,cli-lab-1",
        "p-0001,LDL,2.1,mmol/L,2025-06-01T09:00:00+02:00,LAB,gp-de-linde,cli-lab-2",
        "p-0001,HBA1C,5000,mmol/mol,2025-06-01T09:00:00+02:00,LAB,gp-de-linde,cli-lab-3",
        "p-0001,HBA1C,50,mmol/mol,not a time,LAB,gp-de-linde,cli-lab-4",
    ]
    source.write_text(HEADER + "\n".join(rows) + "\n")
    first = run(kis, "measurements", "import", str(source), "--batch-size", "2")
    assert json.loads(first.stdout) == {
        "rows": 4,
        "accepted": 2,
        "duplicate": 0,
        "corrected": 0,
        "rejected": 2,
        "rejects_file": str(tmp_path / "lab.rejects.csv"),
    }
    assert "\r" not in first.stderr, "no progress bar when stderr is not a terminal"
    with (tmp_path / "lab.rejects.csv").open() as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["source_record_id"], r["line"], r["reason"], r["field"]) for r in rejects] == [
        ("cli-lab-3", "4", "OUT_OF_RANGE", "value"),
        ("cli-lab-4", "5", rejects[1]["reason"], "measure_time"),
    ]

    source.write_text(HEADER + rows[0].replace(",50,", ",48,") + "\n" + rows[1] + "\n")
    second = run(kis, "measurements", "import", str(source))
    summary = json.loads(second.stdout)
    assert (summary["accepted"], summary["duplicate"], summary["corrected"]) == (0, 1, 1)


def test_reports_export_as_csv_and_xlsx_with_empty_numbers_for_suppressed_cells(
    env: dict[str, str], tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    insurer = env | {
        "CARENET_CLIENT_ID": "carenet-insurer",
        "CARENET_CLIENT_SECRET": "carenet-insurer-secret",
    }
    exported = run(insurer, "reports", "export", "--contract", "vgz-zuidoost-2025")
    table = list(csv.DictReader(exported.stdout.splitlines()))
    assert table
    suppressed = [r for r in table if r["suppression"] != "none"]
    published = [r for r in table if r["suppression"] == "none"]
    assert suppressed and published
    assert all(r["numerator"] == r["denominator"] == r["score"] == "" for r in suppressed)
    assert all(r["denominator"] != "" for r in published)

    book = tmp_path / "report.xlsx"
    run(insurer, "reports", "export", "--contract", "vgz-zuidoost-2025", "--format", "xlsx",
        "-o", str(book))  # fmt: skip
    rows = list(load_workbook(book)["cells"].iter_rows(values_only=True))
    assert len(rows) == len(table) + 1
    assert rows[0][:3] == ("report", "indicator", "version")

    evaluated = run(
        insurer, "reports", "evaluate", "--contract", "vgz-zuidoost-2025",
        "--period-start", "2025-01-01", "--period-end", "2026-01-01",
    )  # fmt: skip
    assert json.loads(evaluated.stdout)["report"] == table[0]["report"]


def test_the_library_needs_no_servicekit_and_no_service() -> None:
    code = (
        "import sys, carenet_client, carenet_client.cli\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'servicekit', 'testkit', 'identity', 'referral', 'careplan', 'outcomes', 'sqlalchemy'})\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "libs" / "carenet_client" / "pyproject.toml"
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    assert not {"servicekit", "testkit"} & set(dependencies)


def test_the_import_shows_progress_on_a_terminal(env: dict[str, str], tmp_path: Path) -> None:
    import pty

    source = tmp_path / "bp.csv"
    source.write_text(
        HEADER
        + "".join(
            f"p-0001,SBP,{120 + i},mm[Hg],2025-07-01T09:00:00+02:00,KIS,gp-de-linde,tty-{i}\n"
            for i in range(5)
        )
    )
    import threading

    controller, terminal = pty.openpty()
    shown = bytearray()

    def drain() -> None:  # read while the command writes, so the terminal never fills up
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        result = subprocess.run(
            [CARENET, "measurements", "import", str(source), "--batch-size", "2"],
            env=kis_env(env) | {"TERM": "xterm", "COLUMNS": "100"},
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(terminal)
        reader.join(timeout=10)
        os.close(controller)
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout)["accepted"] == 5
    assert b"importing bp.csv" in shown, bytes(shown[-500:])
    assert b"5/5" in shown

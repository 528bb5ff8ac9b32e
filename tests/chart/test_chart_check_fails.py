"""The chart check must fail when the chart breaks a promise.

Each test copies the chart (with its golden files) to a temporary directory, breaks one
thing, and runs `tests/chart/check.py --chart <copy> --golden-dir <copy>/golden` as a
process. The check writes a JSON report of its steps; the test asserts which step caught
the break. checkov and hadolint are left out (--skip-checkov --skip-hadolint) to keep this
fast: every break below is caught by an earlier, faster step, named in each test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

try:
    import helm_python  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
except ImportError:  # the chart tests cannot run without Helm's engine: say so, do not skip
    pytest.fail(
        "the chart tests need their packages: pip install -r tests/chart/requirements.txt",
        pytrace=False,
    )

pytestmark = pytest.mark.slow  # runs check.py five times as a process, about 15 s

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHART = REPO / "charts" / "carenet"


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    target = tmp_path / "carenet"
    shutil.copytree(CHART, target)
    return target


def run_check(chart: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    report = chart.parent / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "check.py"),
            "--chart",
            str(chart),
            "--golden-dir",
            str(chart / "golden"),
            "--out-dir",
            str(chart.parent / "out"),
            "--report",
            str(report),
            "--skip-checkov",
            "--skip-hadolint",
            "--skip-self-test",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    steps = {s["name"]: s for s in json.loads(report.read_text())["steps"]}
    return proc.returncode, steps, proc.stdout + proc.stderr


def failed(steps: dict[str, Any]) -> set[str]:
    return {name for name, step in steps.items() if step["status"] == "failed"}


def edit(path: Path, pattern: str, replacement: str, count: int = 0) -> None:
    text = path.read_text()
    new, n = re.subn(pattern, replacement, text, count=count, flags=re.M | re.S)
    assert n, f"{pattern!r} not found in {path}"
    path.write_text(new)


def test_an_unchanged_copy_passes(chart_copy: Path) -> None:
    code, steps, output = run_check(chart_copy)
    assert code == 0, output
    assert failed(steps) == set()


def test_a_removed_probe_fails_the_promises(chart_copy: Path) -> None:
    # Caught by: promises (every Deployment has gRPC startup/readiness/liveness probes).
    # --update-golden accepts the new render, so that no other step can be the one that fails.
    # (With checkov on, CKV_K8S_9 "Readiness Probe Should be Configured" fails as well.)
    edit(
        chart_copy / "templates" / "services.yaml",
        r"^ *readinessProbe:\n.*?(?=^ *livenessProbe:)",
        "",
    )
    code, steps, output = run_check(chart_copy, "--update-golden")
    assert code != 0
    assert failed(steps) == {"promises"}, output
    assert "readinessProbe" in "\n".join(steps["promises"]["details"])


def test_a_removed_run_as_non_root_fails_the_promises(chart_copy: Path) -> None:
    # Caught by: promises (restricted security context on every container, Jobs and the
    # test pod included). checkov does NOT catch this one: its root checks (CKV_K8S_23,
    # CKV_K8S_40) are satisfied by the numeric runAsUser 10001, so the promises step is the guard.
    edit(chart_copy / "templates" / "_helpers.tpl", r"^runAsNonRoot: true\n", "")
    code, steps, output = run_check(chart_copy, "--update-golden")
    assert code != 0
    assert failed(steps) == {"promises"}, output
    assert "runAsNonRoot" in "\n".join(steps["promises"]["details"])


@pytest.mark.parametrize(
    ("where", "pattern", "replacement"),
    [
        ("top level", r"\A", "replicaCount: 3\n"),
        ("under default", r"^  replicaCount: 1\n", "  replicaCount: 1\n  replicas: 3\n"),
        (
            "under a service",
            r"^  identity:\n    enabled: true\n",
            "  identity:\n    enabled: true\n    enable: false\n",
        ),
    ],
)
def test_an_unknown_values_key_fails_lint_and_render(
    chart_copy: Path, where: str, pattern: str, replacement: str
) -> None:
    # Caught by: lint (Helm applies values.schema.json, additionalProperties: false) and
    # render (the same schema refuses the values); nothing is rendered, so later steps skip.
    edit(chart_copy / "values.yaml", pattern, replacement, count=1)
    code, steps, output = run_check(chart_copy)
    assert code != 0
    assert {"lint", "render"} <= failed(steps), output
    assert "additional properties" in json.dumps(steps["lint"]["details"]).lower()


def test_a_stale_golden_file_fails_the_golden_step(chart_copy: Path) -> None:
    # Caught by: golden (the render no longer matches the committed file).
    edit(chart_copy / "golden" / "production.yaml", r"maxReplicas: 8", "maxReplicas: 7", count=1)
    code, steps, output = run_check(chart_copy)
    assert code != 0
    assert failed(steps) == {"golden"}, output
    assert "maxReplicas: 7" in "\n".join(steps["golden"]["details"])

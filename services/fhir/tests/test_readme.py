"""The README's shell examples run, in order, in one bash process against the running API
(the conventions of tests/docs: every fenced block names its language; ``bash`` blocks run
unless marked ``<!-- not-run: why -->``; make run's addresses are replaced by the test's)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from .conftest import FhirApi

REPO = Path(__file__).resolve().parents[3]
README = "services/fhir/README.md"
MAKE_RUN_FHIR = "127.0.0.1:8001"
MAKE_RUN_ISSUER = "127.0.0.1:18080"


def docs_runner() -> ModuleType:
    """tests/docs/test_docs.py (its block parser and script builder), loaded by path."""
    name = "carenet_docs_runner"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests/docs/test_docs.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_every_block_names_its_language() -> None:
    runner = docs_runner()
    found = runner.blocks(README)
    assert all(b.language in runner.RUNNABLE | runner.SHOWN for b in found), found
    assert sum(1 for b in found if b.language in runner.RUNNABLE and not b.not_run) >= 5


def test_the_readme_examples_run_against_the_api(fhir: FhirApi, tmp_path: Path) -> None:
    runner = docs_runner()
    issuer_host = fhir.platform.idp.issuer.split("//", 1)[1].split("/", 1)[0]
    fhir_host = fhir.base.split("//", 1)[1].split("/", 1)[0]
    script = runner.script_for(README, {MAKE_RUN_FHIR: fhir_host, MAKE_RUN_ISSUER: issuer_host})
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "CARENET_DOC_PYTHON": sys.executable,
    }
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + "\n--- stderr ---\n" + result.stderr
    assert result.returncode == 0, output
    lines = result.stdout.splitlines()
    # what each example prints, in order
    assert lines[0] == "4.0.1", output
    assert lines[1].startswith("CarePlan active "), output
    assert "('CarePlan', 'match')" in lines[2] and "('Goal', 'include')" in lines[2], output
    assert "('Task', " in lines[3] and "('ServiceRequest', " in lines[3], output
    assert lines[4].startswith("searchset 5 ['self', 'next']"), output
    assert lines[5] == "403", output  # another patient's care plan
    assert lines[6].startswith("summary https://carenet.example/fhir/Measure/"), output
    assert lines[7] == "401", output  # careplan refuses the insurer's token
    assert lines[8] == "200", output  # the KIS for its GP
    assert len(lines) == 9, output

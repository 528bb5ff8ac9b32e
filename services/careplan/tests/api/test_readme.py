"""The README's grpcurl walk-through runs as written: its shell block, against this
session's careplan server and issuer (the only change: their addresses), under both
``bash -euo pipefail`` and ``sh -e``, with nothing but what ``make run`` installs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from testkit.idp import LocalIdp

from ..conftest import CarePlanServer
from .conftest import Users, get

SERVICE_DIR = Path(__file__).resolve().parents[2]
REPO = SERVICE_DIR.parents[1]
SECTION = "## A KIS reading and updating the plan with grpcurl"


def _example() -> str:
    readme = (SERVICE_DIR / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(SECTION) :]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found is not None, "the section has no sh block"
    return found.group(1)


@pytest.mark.parametrize("shell", [["bash", "-euo", "pipefail", "-c"], ["sh", "-e", "-c"]])
def test_the_readme_example_runs_as_written(
    careplan_service: CarePlanServer,
    stub: rpc_grpc.CarePlanServiceStub,
    local_idp: LocalIdp,
    users: Users,
    plan_p1: pb.CarePlan,
    shell: list[str],
) -> None:
    assert shutil.which(shell[0]), shell
    script = _example()
    for literal, actual in (
        ("http://127.0.0.1:18080/realms/carenet", local_idp.issuer),
        ("127.0.0.1:50053", careplan_service.target),
    ):
        assert literal in script
        script = script.replace(literal, actual)
    before = get(stub, users.gp)

    run = subprocess.run(
        [*shell, script], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert "Code: Aborted" in run.stdout
    after = get(stub, users.gp)
    # one evaluation moment added, once, although the edit was sent twice
    assert after.version == before.version + 1
    assert len(after.evaluations) == len(before.evaluations) + 1

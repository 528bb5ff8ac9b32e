"""Every example in the guides and READMEs runs, so a document that drifts fails the build.

The convention (docs/kis.md, "How the examples are checked"):

- every fenced block names its language. Blocks in ``bash``, ``sh``, ``shell``, ``console``
  or ``python`` are examples and run; ``text``, ``json``, ``csv`` and the like are shown only;
- a block that must not run (a server that keeps running, a production setting) is preceded
  by ``<!-- not-run: why -->``; the reason is required, and such blocks are counted;
- the shell and Python examples of one document run in order, in one bash process (a Python
  block runs with the virtualenv's interpreter and sees the variables the shell blocks
  exported), in a scratch folder that links the repository's ``.venv``, against a fresh
  demo platform of their own, with
  ``set -euo pipefail``; ``console`` blocks run their ``$ `` lines;
- the documents name ``make run``'s fixed addresses (``127.0.0.1:50051``-``50054``, the
  issuer at ``127.0.0.1:18080``); the test substitutes the addresses of the platform it
  started, and nothing else.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testkit.idp import LocalIdp

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [
    "README.md",
    "docs/kis.md",
    "docs/insurer.md",
    # the gRPC services make run starts (the web app's README is checked by its own tests)
    *(f"services/{name}/README.md" for name in ("identity", "referral", "careplan", "outcomes")),
]
RUNNABLE = {"bash", "sh", "shell", "console", "python"}
SHOWN = {"text", "json", "csv", "proto", "yaml", "toml", "ini", "sql", "diff", "mermaid", "psv"}
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)\s*(.*)$")
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(\S.*?)\s*-->$")
MAKE_RUN_PORTS = {
    "identity": 50051,
    "referral": 50052,
    "careplan": 50053,
    "outcomes": 50054,
}
MAKE_RUN_ISSUER = "127.0.0.1:18080"


@dataclass(frozen=True)
class Block:
    document: str
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    not_run: str  # the reason, when marked


def blocks(document: str) -> list[Block]:
    lines = (REPO / document).read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, fence, language = match.group(1), match.group(2), match.group(3).lower()
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            index += 1
        index += 1
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker = NOT_RUN.match(lines[before].strip()) if before >= 0 else None
        found.append(
            Block(document, start + 1, language, "\n".join(body), marker.group(1) if marker else "")
        )
    return found


def console_commands(text: str) -> str:
    """The ``$ `` lines of a console block (with their continuation lines)."""
    commands: list[str] = []
    continuing = False
    for line in text.splitlines():
        if line.startswith("$ "):
            commands.append(line[2:])
            continuing = line.endswith("\\")
        elif continuing:
            commands.append(line)
            continuing = line.endswith("\\")
    return "\n".join(commands)


def script_for(document: str, substitutions: dict[str, str]) -> str:
    parts = [
        "set -euo pipefail",
        "CARENET_DOC_BLOCK=start",
        "trap 'echo \"[docs] failed in $CARENET_DOC_BLOCK (exit $?)\" >&2' ERR",
    ]
    for block in blocks(document):
        if block.not_run or block.language not in RUNNABLE:
            continue
        text = block.text
        for old, new in substitutions.items():
            text = text.replace(old, new)
        where = f"{block.document}:{block.line}"
        parts.append(f"CARENET_DOC_BLOCK={where}")
        parts.append(f"echo '[docs] {where}' >&2")
        if block.language == "python":
            parts.append(
                f"\"$CARENET_DOC_PYTHON\" - <<'__CARENET_DOC_PY__'\n{text}\n__CARENET_DOC_PY__"
            )
        elif block.language == "console":
            parts.append(console_commands(text))
        else:
            parts.append(text)
    return "\n".join(parts) + "\n"


def test_every_block_says_what_it_is_and_why_it_does_not_run() -> None:
    """Runs without servers: a block without a language, or a not-run marker without a
    reason, would hide an example from the run below."""
    problems: list[str] = []
    counts = {"run": 0, "not-run": 0, "shown": 0}
    for document in DOCUMENTS:
        for block in blocks(document):
            where = f"{document}:{block.line}"
            if not block.language:
                problems.append(
                    f"{where}: a fenced block without a language (bash, python, text, ...)"
                )
            elif block.language not in RUNNABLE | SHOWN:
                problems.append(f"{where}: unknown block language {block.language!r}")
            elif block.language in RUNNABLE:
                counts["not-run" if block.not_run else "run"] += 1
            else:
                counts["shown"] += 1
    assert not problems, "\n".join(problems)
    assert counts["run"] > 20, counts
    # a few blocks are exempt (commands that start servers, run the suite, need production);
    # the rest must run
    assert counts["not-run"] <= counts["run"] // 2, counts


def test_the_runner_finds_markers_and_console_commands(tmp_path: Path) -> None:
    assert console_commands("$ echo a \\\n  b\nout\n$ true\n") == "echo a \\\n  b\ntrue"
    assert NOT_RUN.match("<!-- not-run: starts a server -->")
    assert not NOT_RUN.match("<!-- not-run: -->")


@pytest.mark.e2e
@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_examples_of_a_document_run_against_fresh_demo_data(
    document: str, local_idp: LocalIdp, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from .conftest import local_platform

    runnable = [b for b in blocks(document) if b.language in RUNNABLE and not b.not_run]
    if not runnable:
        pytest.skip(f"{document} has no runnable examples")
    lp: Any = local_platform()
    template = lp.demo_template(local_idp, tmp_path_factory)
    home = tmp_path_factory.mktemp("home")
    issuer_host = local_idp.issuer.split("//", 1)[1].split("/", 1)[0]
    with lp.running_platform(local_idp, tmp_path_factory.mktemp("docs") / "run", template) as p:
        substitutions = {
            f"127.0.0.1:{port}": p.target(name) for name, port in MAKE_RUN_PORTS.items()
        }
        substitutions[MAKE_RUN_ISSUER] = issuer_host
        script = script_for(document, substitutions)
        venv_bin = str(Path(sys.executable).parent)
        path = os.pathsep.join(
            d for d in os.environ.get("PATH", "").split(os.pathsep) if d and d != venv_bin
        )
        env = {
            "PATH": path or "/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "CARENET_DOC_PYTHON": sys.executable,
        }
        env |= {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "TMPDIR")}
        # a scratch folder, so the files the examples write stay out of the repository
        workdir = tmp_path_factory.mktemp("workdir")
        (workdir / ".venv").symlink_to(REPO / ".venv")
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    output = result.stdout[-6000:] + "\n--- stderr ---\n" + result.stderr[-6000:]
    assert result.returncode == 0, f"{document}: an example failed\n{output}"

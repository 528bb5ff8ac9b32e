"""Renders a fuzz run's report (``summary.json`` and ``run.json`` in the report folder,
``build/fuzz`` after ``make fuzz``) as the run's facts and its per-RPC table of calls and
answers, in Markdown. With ``--write FILE`` it replaces what stands between the markers
``<!-- fuzz-run:start -->`` and ``<!-- fuzz-run:end -->`` in FILE (docs/fuzzing.md)::

    .venv/bin/python tests/fuzz/table.py build/fuzz --write docs/fuzzing.md

Nothing but the report's own counts goes into the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

START = "<!-- fuzz-run:start -->"
END = "<!-- fuzz-run:end -->"
KINDS = ("generated", "raw")


def _n(value: int) -> str:
    return f"{value:,}"


def _answers(codes: dict[str, int]) -> str:
    ordered = sorted(codes.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{code} {count}" for code, count in ordered)


def render(summary: dict[str, Any], run: dict[str, Any]) -> str:
    """The run's facts in one paragraph, then one row per RPC."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for key, counts in summary.items():
        rpc, _, kind = key.rpartition(" ")
        rows.setdefault(rpc, {})[kind] = counts
    totals = {kind: sum(r.get(kind, {}).get("calls", 0) for r in rows.values()) for kind in KINDS}
    internal = sum(
        counts["codes"].get(code, 0)
        for counts in summary.values()
        for code in ("INTERNAL", "UNKNOWN")
    )
    least = {
        kind: min((r.get(kind, {}).get("calls", 0) for r in rows.values()), default=0)
        for kind in KINDS
    }
    lines = []
    if run:
        minutes = round(int(run.get("seconds", 0)) / 60)
        modified = " (with uncommitted changes)" if run.get("tree_modified") else ""
        box = float(run.get("time_box_seconds", 0) or 0)
        command = (
            f"make fuzz FUZZ_EXAMPLES={run.get('generated_examples')} "
            f"FUZZ_RAW_EXAMPLES={run.get('raw_examples')} FUZZ_WORKERS={run.get('workers')}"
            + (f" FUZZ_SECONDS={box:.0f}" if box else "")
        )
        boxed = (
            f"; the time box of {box / 60:.0f} minutes left {run.get('shards_not_run', 0)} "
            f"shards of {run.get('shard_examples')} examples unrun"
            if box
            else ""
        )
        lines.append(
            f"Commit `{str(run.get('commit', ''))[:7]}`{modified}, started {run.get('started', '')}, "
            f"`{command}`: {len(rows)} RPCs, {_n(totals['generated'])} generated and "
            f"{_n(totals['raw'])} raw calls (at least {_n(least['generated'])} and "
            f"{_n(least['raw'])} per RPC) in {minutes} minutes{boxed}; "
            f"{internal} answered `INTERNAL` or `UNKNOWN`, "
            f"{run.get('failures', 0)} failures recorded (`failures.jsonl`)."
        )
        lines.append("")
    lines.append("| RPC | generated | answers | raw | answers |")
    lines.append("|---|---:|---|---:|---|")
    for rpc in sorted(rows):
        cells = [rpc]
        for kind in KINDS:
            counts = rows[rpc].get(kind, {"calls": 0, "codes": {}})
            cells += [_n(int(counts["calls"])), _answers(counts["codes"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_between_markers(document: str, rendered: str) -> str:
    if document.count(START) != 1 or document.count(END) != 1:
        raise SystemExit(f"the document needs one {START} and one {END}")
    head, rest = document.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{rendered}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the report folder (build/fuzz)")
    parser.add_argument("--write", type=Path, help="the document whose table to replace")
    args = parser.parse_args(argv)
    summary = json.loads((args.report / "summary.json").read_text())
    run_file = args.report / "run.json"
    run = json.loads(run_file.read_text()) if run_file.exists() else {}
    rendered = render(summary, run)
    if args.write is None:
        sys.stdout.write(rendered)
        return 0
    args.write.write_text(replace_between_markers(args.write.read_text(), rendered))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

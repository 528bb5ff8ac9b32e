"""tests/fuzz/table.py renders a run's report into docs/fuzzing.md, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .table import END, START, main, render

SUMMARY = {
    "identity.GetPatient generated": {
        "calls": 10_000,
        "codes": {"OK": 12, "PERMISSION_DENIED": 9_000, "INVALID_ARGUMENT": 988},
        "call_seconds": 80.5,
    },
    "identity.GetPatient raw": {"calls": 10_001, "codes": {"INVALID_ARGUMENT": 10_001}},
    "careplan.GetCarePlan generated": {"calls": 9_500, "codes": {"INTERNAL": 2, "OK": 9_498}},
    "careplan.GetCarePlan raw": {"calls": 10_000, "codes": {"INVALID_ARGUMENT": 10_000}},
}
RUN = {
    "commit": "0123456789abcdef",
    "tree_modified": False,
    "generated_examples": 10_000,
    "raw_examples": 10_000,
    "workers": 8,
    "started": "2026-12-07T12:00:00+0000",
    "seconds": 3_600,
    "failures": 1,
}


def test_one_row_per_rpc_with_its_counts_and_codes_most_frequent_first() -> None:
    text = render(SUMMARY, RUN)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "." in line]
    assert rows == [
        "| careplan.GetCarePlan | 9,500 | OK 9498, INTERNAL 2 | 10,000 | INVALID_ARGUMENT 10000 |",
        "| identity.GetPatient | 10,000 | PERMISSION_DENIED 9000, INVALID_ARGUMENT 988, OK 12 "
        "| 10,001 | INVALID_ARGUMENT 10001 |",
    ]
    facts = text.splitlines()[0]
    assert "Commit `0123456`" in facts
    assert "2 RPCs" in facts
    assert "19,500 generated and 20,001 raw calls" in facts
    assert "at least 9,500 and 10,000 per RPC" in facts
    assert "in 60 minutes;" in facts
    assert "`make fuzz FUZZ_EXAMPLES=10000 FUZZ_RAW_EXAMPLES=10000 FUZZ_WORKERS=8`" in facts
    assert "2 answered `INTERNAL` or `UNKNOWN`" in facts
    assert "1 failures recorded" in facts


def test_a_time_box_is_named_with_the_shards_it_left_out() -> None:
    boxed = {**RUN, "time_box_seconds": 5700.0, "shards_not_run": 12, "shard_examples": 500}
    facts = render(SUMMARY, boxed).splitlines()[0]
    assert "FUZZ_WORKERS=8 FUZZ_SECONDS=5700`" in facts
    assert (
        "in 60 minutes; the time box of 95 minutes left 12 shards of 500 examples unrun;" in facts
    )


def test_write_replaces_only_what_stands_between_the_markers(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))
    (tmp_path / "run.json").write_text(json.dumps(RUN))
    document = tmp_path / "fuzzing.md"
    document.write_text(f"# Fuzzing\n\nbefore\n{START}\nan old table\n{END}\nafter\n")

    assert main([str(tmp_path), "--write", str(document)]) == 0

    written = document.read_text()
    assert written.startswith(f"# Fuzzing\n\nbefore\n{START}\nCommit `0123456`")
    assert written.endswith(f"| INVALID_ARGUMENT 10001 |\n{END}\nafter\n")
    assert "an old table" not in written


def test_a_document_without_the_markers_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))
    document = tmp_path / "fuzzing.md"
    document.write_text("# Fuzzing\n")

    with pytest.raises(SystemExit):
        main([str(tmp_path), "--write", str(document)])
    assert document.read_text() == "# Fuzzing\n"

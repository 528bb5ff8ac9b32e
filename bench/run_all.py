"""Runs every benchmark in bench/ (files named <service>_<name>.py) one after another.

.venv/bin/python bench/run_all.py [--quick]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    extra = sys.argv[1:]
    failed = []
    for script in sorted(HERE.glob("*_*.py")):
        if script.name in {"run_all.py"}:
            continue
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script), *extra], check=False).returncode != 0:
            failed.append(script.name)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

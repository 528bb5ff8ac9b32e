"""The measurement code table (``codes.json`` in this package), loaded once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Code:
    code: str
    display: str
    unit: str
    min_value: float
    max_value: float
    nhg: str
    loinc: str

    def plausible(self, value: float) -> bool:
        return self.min_value <= value <= self.max_value


@cache
def code_table() -> dict[str, Code]:
    raw = json.loads(resources.files("outcomes").joinpath("codes.json").read_text())
    return {
        c["code"]: Code(
            c["code"],
            c["display"],
            c["unit"],
            float(c["min"]),
            float(c["max"]),
            c["nhg"],
            c["loinc"],
        )
        for c in raw["codes"]
    }

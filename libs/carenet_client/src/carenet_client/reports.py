"""An outcome report as a table: one row per cell, for CSV or an Excel workbook.

A suppressed cell (small-cell rule) is written with its ``suppression`` and **empty**
numerator, denominator, score and interval, never as zeros: a zero in the export is a real
zero. The numbers are read from the cell's ``values`` (unset exactly when the cell is
suppressed), not from the deprecated fields that read 0 for a suppressed cell. Scores are
percentages (a rate indicator: per 100 patient-years); a score without eligible patients
is empty.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from carenet.outcomes.v1 import outcomes_pb2

__all__ = ["HEADER", "cell_rows", "write_csv", "write_xlsx"]

HEADER = (
    "report",
    "indicator",
    "version",
    "practice",
    "age_band",
    "sex",
    "band",
    "suppression",
    "numerator",
    "denominator",
    "exclusions",
    "score",
    "ci_low",
    "ci_high",
    "patient_years",
)
Cell = str | int | float | None


def _enum(kind: object, value: int, prefix: str) -> str:
    name: str = kind.Name(value)  # type: ignore[attr-defined]
    return name.removeprefix(prefix).lower()


def suppressed(cell: outcomes_pb2.ReportCell) -> bool:
    return cell.suppression in (
        outcomes_pb2.SUPPRESSION_PRIMARY,
        outcomes_pb2.SUPPRESSION_COMPLEMENTARY,
    )


def cell_rows(report: str, cells: Iterable[outcomes_pb2.ReportCell]) -> Iterator[tuple[Cell, ...]]:
    """One row per cell. The numbers come from the cell's ``values``, which a suppressed cell
    does not have (its numbers stay empty); a score without eligible patients is empty too."""
    for cell in cells:
        numbers: tuple[Cell, ...] = (None,) * 7
        if not suppressed(cell) and cell.HasField("values"):
            v = cell.values

            def wrapped(name: str, *, v: outcomes_pb2.CellValues = v) -> Cell:
                if not v.HasField(name):  # type: ignore[arg-type]
                    return None
                value: float = getattr(v, name).value
                return value

            numbers = (
                v.numerator,
                v.denominator,
                v.exclusions,
                wrapped("score"),
                wrapped("ci_low"),
                wrapped("ci_high"),
                wrapped("patient_years"),
            )
        yield (
            report,
            cell.indicator,
            cell.version,
            cell.practice,
            cell.age_band,
            _enum(outcomes_pb2.Sex, cell.sex, "SEX_") if cell.sex else "",
            cell.band,
            _enum(outcomes_pb2.Suppression, cell.suppression, "SUPPRESSION_"),
            *numbers,
        )


def write_csv(handle: IO[str], rows: Iterable[tuple[Cell, ...]]) -> int:
    writer = csv.writer(handle)
    writer.writerow(HEADER)
    count = 0
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
        count += 1
    return count


def write_xlsx(path: Path, rows: Iterable[tuple[Cell, ...]]) -> int:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("cells")
    sheet.append(list(HEADER))
    count = 0
    for row in rows:
        sheet.append(list(row))
        count += 1
    book.save(path)
    return count

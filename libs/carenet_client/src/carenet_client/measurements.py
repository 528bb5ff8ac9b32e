"""Measurement rows from a CSV file, and the rejects file of an import.

The CSV has a header row with the columns ``patient, code, value, unit, measure_time,
source_kind, source_org, source_record_id``:

- ``patient``: ``p-0001`` or ``patients/p-0001``;
- ``code`` and ``unit``: from the code table (``ListMeasurementCodes``), e.g. ``HBA1C``
  and ``mmol/mol``;
- ``measure_time``: ISO 8601 with an offset, e.g. ``2025-03-01T09:00:00+01:00``;
- ``source_kind``: ``KIS``, ``LAB``, ``HOSPITAL``, ``INSURER_CLAIMS``,
  ``LIFESTYLE_PROVIDER`` or ``PATIENT``;
- ``source_org``: the supplying organisation, ``gp-de-linde`` or ``organisations/gp-de-linde``;
- ``source_record_id``: the source's own id of the record (a re-import of it is a duplicate,
  or a correction when its value or time changed).

A row the client cannot read (no valid time, a value that is not a number) is still sent, so
the server names what is wrong with it the same way as for every other client.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import IO

from google.protobuf.timestamp_pb2 import Timestamp

from carenet.outcomes.v1 import outcomes_pb2, outcomes_service_pb2

__all__ = ["COLUMNS", "read_rows", "write_rejects"]

COLUMNS = (
    "patient",
    "code",
    "value",
    "unit",
    "measure_time",
    "source_kind",
    "source_org",
    "source_record_id",
)
_KINDS = {
    name.removeprefix("SOURCE_KIND_"): int(value) for name, value in outcomes_pb2.SourceKind.items()
}
_OUTCOMES = {
    int(value): name.removeprefix("ROW_OUTCOME_").lower()
    for name, value in outcomes_service_pb2.RowOutcome.items()
}


def _timestamp(text: str) -> Timestamp | None:
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(moment.astimezone(dt.UTC))
    return ts


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _prefixed(value: str, prefix: str) -> str:
    value = value.strip()
    return value if not value or value.startswith(prefix) else f"{prefix}{value}"


def read_rows(
    handle: IO[str],
) -> Iterator[tuple[dict[str, str], outcomes_service_pb2.MeasurementRow]]:
    """Each CSV record with the row made of it. Raises ValueError when a column is missing."""
    reader = csv.DictReader(handle)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"the CSV lacks the column(s) {', '.join(missing)}")
    for record in reader:
        row = outcomes_service_pb2.MeasurementRow(
            patient=_prefixed(record.get("patient") or "", "patients/"),
            code=(record.get("code") or "").strip(),
            value=_float(record.get("value") or ""),
            unit=(record.get("unit") or "").strip(),
            source=outcomes_pb2.MeasurementSource(
                kind=_KINDS.get((record.get("source_kind") or "").strip().upper(), 0),  # type: ignore[arg-type]
                organisation=_prefixed(record.get("source_org") or "", "organisations/"),
            ),
            source_record_id=record.get("source_record_id") or "",
        )
        ts = _timestamp(record.get("measure_time") or "")
        if ts is not None:
            row.measure_time.CopyFrom(ts)
        yield {k: v or "" for k, v in record.items() if k is not None}, row


def outcome_name(outcome: int) -> str:
    return _OUTCOMES.get(outcome, str(outcome))


def write_rejects(
    handle: IO[str],
    records: Sequence[dict[str, str]],
    results: Sequence[outcomes_service_pb2.RowResult],
) -> int:
    """Writes the rejected rows (the CSV's own columns plus ``line``, ``reason`` and
    ``field``) so they can be fixed and imported again; returns how many."""
    writer = csv.writer(handle)
    writer.writerow([*COLUMNS, "line", "reason", "field"])
    written = 0
    for result in results:
        if result.outcome != outcomes_service_pb2.ROW_OUTCOME_REJECTED:
            continue
        record = records[result.row] if 0 <= result.row < len(records) else {}
        # line 1 is the header, so row 0 is on line 2
        writer.writerow(
            [*(record.get(c, "") for c in COLUMNS), result.row + 2, result.reason, result.field]
        )
        written += 1
    return written

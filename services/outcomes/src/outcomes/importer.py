"""The admin CLI's ``outcomes import FILE.csv``: a gRPC client of IngestMeasurements.

The CSV has a header row with the columns ``patient, code, value, unit, measure_time,
source_kind, source_org, source_record_id`` (``measure_time`` in ISO 8601 with offset;
``source_kind`` e.g. ``LAB``). The import runs with the caller's own token (env
``OUTCOMES_IMPORT_TOKEN``), so identity authorizes it exactly as any other ingest. Progress
goes to stderr as plain text; the summary (and the first rejects) to stdout as JSON.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from typing import IO

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes.config import Settings

CHUNK = 2000
KINDS: dict[str, int] = {
    name.removeprefix("SOURCE_KIND_"): int(value) for name, value in pb.SourceKind.items()
}


def _timestamp(text: str) -> Timestamp | None:
    try:
        moment = dt.datetime.fromisoformat(text)
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


def rows(handle: IO[str]) -> Iterator[rpc.MeasurementRow]:
    for record in csv.DictReader(handle):
        patient = record.get("patient", "")
        row = rpc.MeasurementRow(
            patient=patient if patient.startswith("patients/") else f"patients/{patient}",
            code=record.get("code", ""),
            value=_float(record.get("value", "")),
            unit=record.get("unit", ""),
            source=pb.MeasurementSource(
                kind=KINDS.get(record.get("source_kind", ""), 0),  # type: ignore[arg-type]
                organisation=_org(record.get("source_org", "")),
            ),
            source_record_id=record.get("source_record_id", ""),
        )
        ts = _timestamp(record.get("measure_time", ""))
        if ts is not None:
            row.measure_time.CopyFrom(ts)
        yield row


def _org(value: str) -> str:
    return value if value.startswith("organisations/") or not value else f"organisations/{value}"


def _progress(done: int, total: int, out: IO[str]) -> None:
    width = 30
    filled = width * done // total if total else width
    out.write(f"\rimporting [{'#' * filled}{'.' * (width - filled)}] {done}/{total} rows")
    out.flush()


def requests(path: str, total: int, out: IO[str]) -> Iterator[rpc.IngestMeasurementsRequest]:
    sent = 0
    batch: list[rpc.MeasurementRow] = []
    with open(path, newline="") as handle:
        for row in rows(handle):
            batch.append(row)
            if len(batch) >= CHUNK:
                sent += len(batch)
                yield rpc.IngestMeasurementsRequest(rows=batch)
                _progress(sent, total, out)
                batch = []
    if batch:
        sent += len(batch)
        yield rpc.IngestMeasurementsRequest(rows=batch)
    _progress(sent, total, out)
    out.write("\n")


def main(
    settings: Settings, args: list[str], err: IO[str] = sys.stderr, out: IO[str] = sys.stdout
) -> int:
    parser = argparse.ArgumentParser(prog="outcomes import")
    parser.add_argument("file")
    parser.add_argument("--target", default=f"127.0.0.1:{settings.grpc_port}")
    parser.add_argument("--timeout", type=float, default=600.0)
    options = parser.parse_args(args)
    token = os.environ.get("OUTCOMES_IMPORT_TOKEN", "")
    if not token:
        err.write("set OUTCOMES_IMPORT_TOKEN to a bearer token of the importing user\n")
        return 2
    with open(options.file, newline="") as handle:
        total = max(0, sum(1 for _ in handle) - 1)
    with grpc.insecure_channel(options.target) as channel:
        stub = rpc_grpc.OutcomesServiceStub(channel)
        try:
            reply = stub.IngestMeasurements(
                requests(options.file, total, err),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=options.timeout,
            )
        except grpc.RpcError as error:
            err.write(f"\nimport failed: {error.code().name}\n")
            return 1
    reasons = Counter(r.reason for r in reply.results if r.outcome == rpc.ROW_OUTCOME_REJECTED)
    summary = {
        "rows": total,
        "accepted": reply.accepted,
        "duplicates": reply.duplicates,
        "corrected": reply.corrected,
        "rejected": reply.rejected,
        "rejects_by_reason": dict(sorted(reasons.items())),
        # CSV line numbers: the header is line 1, so row n is on line n + 2.
        "first_rejects": [
            {"line": r.row + 2, "reason": r.reason, "field": r.field}
            for r in reply.results
            if r.outcome == rpc.ROW_OUTCOME_REJECTED
        ][:20],
    }
    out.write(json.dumps(summary, indent=2) + "\n")
    return 0

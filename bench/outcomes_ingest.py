"""IngestMeasurements (token check, per-row validation, BatchAuthorize at identity, enrolment
check, binary COPY into ``measurements`` inside a savepoint, commit; a chunk with a source key
that exists already goes through a staging table and INSERT ... ON CONFLICT DO NOTHING
RETURNING instead) against, in the same run on the same ``measurements`` table:

- raw psycopg binary COPY of the same rows (goal: ingest >= 50 % of its rows/s);
- the ORM path, ``session.add_all`` of Measurement objects and commit (goal: ingest >= 5x).

Each call moves one batch of BATCH rows, so the call-throughput ratio is the rows/s ratio.

    .venv/bin/python bench/outcomes_ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools

import grpc
import psycopg
from common import platform
from google.protobuf.timestamp_pb2 import Timestamp
from harness import compare, libpq, report
from sqlalchemy.orm import Session

from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes.models import Measurement
from outcomes.repository import MEASUREMENT_COLUMNS
from servicekit.db import make_engine

BATCH = 5000
PATIENTS = ("p-0001", "p-0002")  # the demo patients of dr.jansen's practice, enrolled by seed-demo
WHEN = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
_ids = itertools.count()


def _proto_rows() -> list[rpc.MeasurementRow]:
    ts = Timestamp()
    ts.FromDatetime(WHEN)
    source = pb.MeasurementSource(kind=pb.SOURCE_KIND_LAB, organisation="organisations/lab-bench")
    return [
        rpc.MeasurementRow(
            patient=f"patients/{PATIENTS[i % 2]}",
            code="HBA1C",
            value=40.0 + i % 40,
            unit="mmol/mol",
            measure_time=ts,
            source=source,
        )
        for i in range(BATCH)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short rounds, for trying it out")
    args = parser.parse_args()
    rounds, seconds = (2, 3.0) if args.quick else (5, 8.0)
    outcomes_env = {
        "OUTCOMES_OIDC_CLIENT_ID": "svc-outcomes",
        "OUTCOMES_OIDC_CLIENT_SECRET": "svc-outcomes-secret",
    }
    with platform({"identity": {}, "outcomes": outcomes_env}) as p:
        url = p.processes["outcomes"].env["OUTCOMES_DATABASE_URL"]
        token = p.idp.password_token("carenet-kis", "dr.jansen")
        metadata = (("authorization", f"Bearer {token}"),)
        template = _proto_rows()
        conn = psycopg.connect(libpq(url))
        engine = make_engine(url)
        with grpc.insecure_channel(p.target("outcomes")) as channel:
            stub = rpc_grpc.OutcomesServiceStub(channel)

            def candidate(_i: int) -> object:
                tag = next(_ids)
                for n, row in enumerate(template):
                    row.source_record_id = f"grpc-{tag}-{n}"
                reply = stub.IngestMeasurements(
                    iter([rpc.IngestMeasurementsRequest(rows=template)]),
                    metadata=metadata,
                    timeout=60,
                )
                assert reply.accepted == BATCH, reply.results[:3]
                return reply

            def tuples(prefix: str) -> list[tuple[object, ...]]:
                tag = next(_ids)
                now = dt.datetime.now(dt.UTC)
                return [
                    (
                        "cg-zuidoost",
                        PATIENTS[n % 2],
                        "HBA1C",
                        40.0 + n % 40,
                        "mmol/mol",
                        WHEN,
                        "LAB",
                        "lab-bench",
                        f"{prefix}-{tag}-{n}",
                        now,
                    )
                    for n in range(BATCH)
                ]

            def raw_copy(_i: int) -> object:
                rows = tuples("copy")
                columns = ", ".join(MEASUREMENT_COLUMNS)
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY measurements ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
                ):
                    copy.set_types(
                        [
                            "text",
                            "text",
                            "text",
                            "float8",
                            "text",
                            "timestamptz",
                            "text",
                            "text",
                            "text",
                            "timestamptz",
                        ]
                    )
                    for r in rows:
                        copy.write_row(r)
                conn.commit()
                return None

            def orm_add_all(_i: int) -> object:
                rows = tuples("orm")
                with Session(engine) as session:
                    session.add_all(
                        Measurement(**dict(zip(MEASUREMENT_COLUMNS, r, strict=True))) for r in rows
                    )
                    session.commit()
                return None

            candidate(0)
            results = [
                compare(
                    "IngestMeasurements vs raw COPY (rows/s)",
                    raw_copy,
                    candidate,
                    rounds=rounds,
                    seconds=seconds,
                    concurrency=1,
                ),
                compare(
                    "IngestMeasurements vs ORM add_all (rows/s)",
                    orm_add_all,
                    candidate,
                    rounds=rounds,
                    seconds=seconds,
                    concurrency=1,
                ),
            ]
        conn.close()
        engine.dispose()
    for r in results:
        summary = r.summary()
        base, cand = summary["baseline_throughput_median"], summary["candidate_throughput_median"]
        assert isinstance(base, float) and isinstance(cand, float)
        print(f"{r.name}: baseline {base * BATCH:,.0f} rows/s, ingest {cand * BATCH:,.0f} rows/s")
    report(results, "outcomes_ingest.json")


if __name__ == "__main__":
    main()

"""A FHIR read of a CarePlan (``GET /fhir/R4/CarePlan/p-0001``) against the gRPC
``GetCarePlan`` it wraps, in the same run, with the same caller's token: the p50 ratio,
median with min and max over the rounds (goal: at most 1.5x).

The FHIR read is the gRPC call plus what the FHIR API adds: HTTP (gunicorn, Flask), the
bearer token checked against the issuer's keys, the channel to careplan, the mapping to a
CarePlan and its JSON. GetCarePlan itself verifies the token, reads the plan and asks
identity's Authorize, which decides and appends one access-log row, in both.

    .venv/bin/python bench/fhir_read.py [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
from pathlib import Path

import grpc
import requests
from harness import REPO, compare, report

from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from testkit.platform import running_fhir, running_platform

PATIENT = "p-0001"
GOAL = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short rounds")
    args = parser.parse_args()
    rounds, seconds = (3, 1.0) if args.quick else (7, 3.0)
    with (
        tempfile.TemporaryDirectory() as workdir,
        running_platform(Path(workdir), name="bench_fhir", ttl_seconds=3600) as p,
        running_fhir(p, workers="2", threads="8", log_level="WARNING") as fhir,
        grpc.insecure_channel(p.target("careplan")) as channel,
    ):
        token = p.idp.password_token("carenet-kis", "dr.jansen")
        metadata = (("authorization", f"Bearer {token}"),)
        stub = rpc_grpc.CarePlanServiceStub(channel)
        request = rpc.GetCarePlanRequest(name=f"patients/{PATIENT}/carePlan")
        url = f"{fhir.base}/CarePlan/{PATIENT}"
        path = f"/fhir/R4/CarePlan/{PATIENT}"
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
        local = threading.local()

        def get() -> tuple[int, bytes]:
            """One GET on this thread's keep-alive connection (http.client: the client's
            own cost stays small, as a gRPC stub's does)."""
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection("127.0.0.1", fhir.port, timeout=5)
            local.conn.request("GET", path, headers=headers)
            response = local.conn.getresponse()
            return response.status, response.read()

        plan = stub.GetCarePlan(request, metadata=metadata, timeout=5)
        status, body = get()
        resource = json.loads(body)
        assert status == 200 and resource["resourceType"] == "CarePlan", resource
        assert resource["meta"]["versionId"] == str(plan.version), resource
        # the same read with requests, as most clients would do it
        assert requests.get(url, headers=headers, timeout=5).json() == resource

        def candidate(_i: int) -> object:
            status, body = get()
            if status != 200:
                raise RuntimeError(f"FHIR read answered {status}")
            return body

        def baseline(_i: int) -> object:
            return stub.GetCarePlan(request, metadata=metadata, timeout=5)

        results = [
            compare(
                "FHIR read CarePlan vs gRPC GetCarePlan",
                baseline,
                candidate,
                rounds=rounds,
                seconds=seconds,
                concurrency=concurrency,
            )
            for concurrency in (1, 4)
        ]
    report(results, "fhir_read.json")
    summary = {}
    for result in results:
        ratios = [
            c.p50_ms / b.p50_ms for c, b in zip(result.candidate, result.baseline, strict=True)
        ]
        median = statistics.median(ratios)
        summary[f"concurrency_{result.concurrency}"] = {
            "p50_ratio": {"median": median, "min": min(ratios), "max": max(ratios)},
            "fhir_p50_ms": statistics.median(s.p50_ms for s in result.candidate),
            "grpc_p50_ms": statistics.median(s.p50_ms for s in result.baseline),
        }
        print(
            f"FHIR read vs GetCarePlan p50 (concurrency {result.concurrency}, "
            f"{result.rounds} rounds): {summary[f'concurrency_{result.concurrency}']['fhir_p50_ms']:.2f}"
            f" ms vs {summary[f'concurrency_{result.concurrency}']['grpc_p50_ms']:.2f} ms = "
            f"{median:.2f}x (min {min(ratios):.2f}x, max {max(ratios):.2f}x; goal at most {GOAL}x)"
        )
    target = REPO / "build" / "bench" / "fhir_read_p50.json"
    target.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

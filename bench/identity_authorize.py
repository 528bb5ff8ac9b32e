"""Authorize (verify the token, decide, append a hash-chained access-log row, commit) against
a bare gRPC handler doing one INSERT and COMMIT, in the same run.

    .venv/bin/python bench/identity_authorize.py [--quick]
"""

from __future__ import annotations

import argparse

import grpc
from common import platform
from harness import BaselineClient, baseline_server, compare, report

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short rounds, for trying it out")
    args = parser.parse_args()
    rounds, seconds = (3, 1.0) if args.quick else (5, 4.0)
    with platform({"identity": {}}) as p, baseline_server(p.database_url) as base_target:
        token = p.idp.password_token("carenet-kis", "dr.jansen")
        metadata = (("authorization", f"Bearer {token}"),)
        request = rpc.AuthorizeRequest(
            patient="patients/p-0001",
            data_category=pb.DATA_CATEGORY_CARE_PLAN,
            action=pb.ACTION_READ,
            purpose="benchmark",
        )
        with (
            grpc.insecure_channel(p.target("identity")) as ch,
            grpc.insecure_channel(base_target) as bch,
        ):
            stub = rpc_grpc.IdentityServiceStub(ch)
            base = BaselineClient(bch)
            reply = stub.Authorize(request, metadata=metadata, timeout=5)
            assert reply.decision == pb.DECISION_PERMIT, reply

            def candidate(_i: int) -> object:
                return stub.Authorize(request, metadata=metadata, timeout=5)

            def baseline(i: int) -> object:
                return base.insert(f"row-{i}".encode(), timeout=5)

            results = [
                compare(
                    "Authorize vs INSERT+COMMIT",
                    baseline,
                    candidate,
                    rounds=rounds,
                    seconds=seconds,
                    concurrency=c,
                )
                for c in (1, 8)
            ]
    report(results, "identity_authorize.json")


if __name__ == "__main__":
    main()

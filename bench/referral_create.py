"""CreateReferral (validate, verify the token, Authorize at identity over gRPC, insert the
referral, its history and its outbox event in one transaction, commit) against a bare gRPC
handler doing one INSERT and COMMIT, in the same run. identity runs as a real process.

Goal (issue 3): throughput >= 60 % of the baseline's, p99 <= 2x the baseline's.

Each round also records the CPU time per call of each server process (referral and
identity for a create; the relay and the server it calls for the floor), which unlike
throughput hardly depends on what else the machine runs.

The same run also measures the floor of this design (see harness.py): a bare handler that
calls a second bare handler doing INSERT and COMMIT (in identity's database, where
Authorize logs), then does its own INSERT and COMMIT (in referral's database). No
CreateReferral that asks identity before it writes can be faster than that floor.

    .venv/bin/python bench/referral_create.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import threading

import grpc
from common import platform
from harness import BASELINE_PIDS, BaselineClient, baseline_server, compare, report
from referral_find_offers import bulk_offers

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc

PATIENTS = ["p-0001", "p-0002"]
# Each (patient, offer) pair is referred once (a second open referral would be refused);
# enough pairs for a full run at several hundred creates per second.
OFFERS = 20_000
PROFILE = pb.PatientProfile(age=55, bmi=31.0, postcode="5612", municipality_code="GM0772")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short rounds, for trying it out")
    args = parser.parse_args()
    rounds, seconds = (3, 1.0) if args.quick else (5, 4.0)
    services = {"identity": {}, "referral": {"REFERRAL_OIDC_CLIENT_SECRET": "svc-referral-secret"}}
    with (
        platform(services) as p,
        baseline_server(p.database_url) as base_target,
        baseline_server(
            p.processes["referral"].env["REFERRAL_DATABASE_URL"], downstream=base_target
        ) as relay_target,
    ):
        offers = bulk_offers(p.processes["referral"].env["REFERRAL_DATABASE_URL"], OFFERS)
        pairs = [(patient, offer) for offer in offers for patient in PATIENTS]
        counter = itertools.count()
        lock = threading.Lock()
        token = p.idp.password_token("carenet-kis", "dr.jansen")
        metadata = (("authorization", f"Bearer {token}"),)
        with (
            grpc.insecure_channel(p.target("referral")) as ch,
            grpc.insecure_channel(base_target) as bch,
            grpc.insecure_channel(relay_target) as rch,
        ):
            stub = rpc_grpc.ReferralServiceStub(ch)
            base = BaselineClient(bch)
            relay = BaselineClient(rch)

            def candidate(_i: int) -> object:
                with lock:
                    patient, offer = pairs[next(counter)]
                return stub.CreateReferral(
                    rpc.CreateReferralRequest(
                        parent=f"patients/{patient}",
                        referral=pb.Referral(offer=offer, reason="benchmark", profile=PROFILE),
                    ),
                    metadata=metadata,
                    timeout=10,
                )

            def baseline(i: int) -> object:
                return base.insert(f"row-{i}".encode(), timeout=5)

            def floor(i: int) -> object:
                return relay.relay(f"row-{i}".encode(), timeout=5)

            def pid(name: str) -> int:
                process = p.processes[name].process
                assert process is not None
                return process.pid

            # CPU per call of each server process, beside the throughput ratios.
            processes = {
                "baseline": {"baseline": BASELINE_PIDS[base_target]},
                "candidate": {"referral": pid("referral"), "identity": pid("identity")},
                "floor": {
                    "relay": BASELINE_PIDS[relay_target],
                    "downstream": BASELINE_PIDS[base_target],
                },
            }

            results = [
                compare(
                    "CreateReferral vs INSERT+COMMIT",
                    baseline,
                    candidate,
                    rounds=rounds,
                    seconds=seconds,
                    concurrency=c,
                    floor=floor,
                    processes=processes,
                )
                for c in (1, 8)
            ]
    report(results, "referral_create.json")


if __name__ == "__main__":
    main()

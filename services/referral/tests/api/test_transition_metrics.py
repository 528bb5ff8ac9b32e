"""Referral's domain counter on the real server: every status change made through the API
is counted by (from_status, to_status), read back through an in-process metric reader;
refused changes and a retried create count nothing."""

from __future__ import annotations

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from servicekit import metrics as sk_metrics
from testkit.fixtures import Tokens
from testkit.metrics import MetricReadings

from .helpers import as_user, fails, listed_offer, refer


def test_status_changes_are_counted_by_from_and_to_status(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, domain_metrics: MetricReadings
) -> None:
    offer = listed_offer(stub, tokens, "metrics")
    referral = refer(stub, tokens, "p-0002", offer, request_id="metrics-create-1")
    again = refer(stub, tokens, "p-0002", offer, request_id="metrics-create-1")
    assert again.name == referral.name
    coach = as_user(tokens, "coach.degroot")

    def move(status: pb.ReferralStatus.ValueType, reason: str = "") -> pb.Referral:
        return stub.TransitionReferral(
            rpc.TransitionReferralRequest(name=referral.name, status=status, reason=reason),
            metadata=coach,
            timeout=10,
        )

    fails(lambda: move(pb.REFERRAL_STATUS_COMPLETED))  # not from requested
    move(pb.REFERRAL_STATUS_ACCEPTED)
    move(pb.REFERRAL_STATUS_IN_PROGRESS)
    move(pb.REFERRAL_STATUS_FAILED, reason="stopped attending")

    moves = [("none", "requested"), ("requested", "accepted"), ("accepted", "in-progress")]
    moves.append(("in-progress", "failed"))
    assert domain_metrics.counts(sk_metrics.REFERRAL_TRANSITIONS) == {
        (("from_status", before), ("to_status", after)): 1 for before, after in moves
    }

"""Referral's domain counter on the real server: every status change made through the API
is counted by (from_status, to_status), read back through an in-process metric reader;
refused changes and a retried create count nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from servicekit import metrics as sk_metrics
from testkit.fixtures import Tokens

from .helpers import as_user, fails, listed_offer, refer


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemoryMetricReader]:
    """The process's domain counters, on a provider read by this test alone."""
    memory = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[memory])
    monkeypatch.setattr(sk_metrics, "_domain", [sk_metrics.DomainMetrics(provider)])
    yield memory
    provider.shutdown()


def _transitions(reader: InMemoryMetricReader) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != sk_metrics.REFERRAL_TRANSITIONS:
                    continue
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    assert set(attributes) == {"from_status", "to_status"}
                    key = (str(attributes["from_status"]), str(attributes["to_status"]))
                    counts[key] += int(point.value)  # type: ignore[union-attr]
    return counts


def test_status_changes_are_counted_by_from_and_to_status(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, reader: InMemoryMetricReader
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

    assert _transitions(reader) == {
        ("none", "requested"): 1,
        ("requested", "accepted"): 1,
        ("accepted", "in-progress"): 1,
        ("in-progress", "failed"): 1,
    }

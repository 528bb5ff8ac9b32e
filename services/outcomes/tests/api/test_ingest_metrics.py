"""Outcomes' domain counter on the real server: every ingested row is counted by its result
(accepted, duplicate, corrected, rejected), read back through an in-process metric reader."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from servicekit import metrics as sk_metrics
from testkit.fixtures import IdentityService, Tokens, bearer

from .support import enrolment_request, register_patients, row


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemoryMetricReader]:
    """The process's domain counters, on a provider read by this test alone."""
    memory = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[memory])
    monkeypatch.setattr(sk_metrics, "_domain", [sk_metrics.DomainMetrics(provider)])
    yield memory
    provider.shutdown()


def _results(reader: InMemoryMetricReader) -> Counter[str]:
    counts: Counter[str] = Counter()
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != sk_metrics.MEASUREMENTS:
                    continue
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    assert set(attributes) == {"result"}
                    counts[str(attributes["result"])] += int(point.value)  # type: ignore[union-attr]
    return counts


def test_ingested_rows_are_counted_by_result(
    identity_service: IdentityService,
    stub: rpc_grpc.OutcomesServiceStub,
    tokens: Tokens,
    reader: InMemoryMetricReader,
) -> None:
    jansen = bearer(tokens.user("dr.jansen"))
    (patient,) = register_patients(identity_service, tokens.user("dr.jansen"), "mtr", 1)
    stub.CreateEnrolment(enrolment_request(patient), metadata=jansen, timeout=10)

    def ingest(rows: list[rpc.MeasurementRow]) -> rpc.IngestMeasurementsResponse:
        return stub.IngestMeasurements(
            iter([rpc.IngestMeasurementsRequest(rows=rows)]), metadata=jansen, timeout=30
        )

    first = ingest(
        [
            row(patient, "metrics-1"),
            row(patient, "metrics-2", 61.0),
            row(patient, "metrics-3", code="NOPE"),
            row("p-nobody", "metrics-4"),
        ]
    )
    assert (first.accepted, first.rejected) == (2, 2)
    again = ingest([row(patient, "metrics-1"), row(patient, "metrics-2", 52.0)])
    assert (again.duplicates, again.corrected) == (1, 1)

    assert _results(reader) == {"accepted": 2, "rejected": 2, "duplicate": 1, "corrected": 1}

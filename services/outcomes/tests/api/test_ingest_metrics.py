"""Outcomes' domain counter on the real server: every ingested row is counted by its result
(accepted, duplicate, corrected, rejected), read back through an in-process metric reader."""

from __future__ import annotations

from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from servicekit import metrics as sk_metrics
from testkit.fixtures import IdentityService, Tokens, bearer
from testkit.metrics import MetricReadings

from .support import enrolment_request, register_patients, row


def test_ingested_rows_are_counted_by_result(
    identity_service: IdentityService,
    stub: rpc_grpc.OutcomesServiceStub,
    tokens: Tokens,
    domain_metrics: MetricReadings,
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

    results = {"accepted": 2, "rejected": 2, "duplicate": 1, "corrected": 1}
    assert domain_metrics.counts(sk_metrics.MEASUREMENTS) == {
        (("result", result),): n for result, n in results.items()
    }

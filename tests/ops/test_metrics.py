"""RPC metrics and spans of a real identity server (in this process, on a real port, with
real tokens), read back through an in-process metric reader and span exporter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from servicekit import metrics as sk_metrics
from servicekit.auth import verifier_for
from testkit.database import fresh_database
from testkit.fixtures import Tokens, bearer
from testkit.idp import LocalIdp

from .conftest import cli, identity_env

LIST = "/carenet.identity.v1.IdentityService/ListOrganisations"
GET = "/carenet.identity.v1.IdentityService/GetOrganisation"

# One provider per process (OpenTelemetry refuses to replace the global one), kept here.
_INSTALLED: dict[str, object] = {}


def _install() -> tuple[InMemoryMetricReader, InMemorySpanExporter]:
    if not _INSTALLED:
        reader = InMemoryMetricReader()
        spans = InMemorySpanExporter()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        # One global tracer provider per process: another test may have set it already
        # (setting it again is refused), so the exporter joins it then.
        current = trace.get_tracer_provider()
        tracer = current if isinstance(current, TracerProvider) else TracerProvider()
        tracer.add_span_processor(SimpleSpanProcessor(spans))
        if tracer is not current:
            trace.set_tracer_provider(tracer)
        _INSTALLED.update(reader=reader, spans=spans)
    return _INSTALLED["reader"], _INSTALLED["spans"]  # type: ignore[return-value]


@dataclass
class InProcess:
    target: str


@pytest.fixture(scope="module")
def identity(local_idp: LocalIdp) -> Iterator[InProcess]:
    """identity's own server, built in this process over a migrated, seeded database."""
    from identity.config import Settings
    from identity.main import build_deps
    from identity.server import create_server

    _install()
    with fresh_database("ops_metrics") as url:
        env = identity_env(local_idp.issuer, url)
        cli("identity", "migrate", env)
        cli("identity", "seed-demo", env)
        settings = Settings(
            database_url=url,
            oidc_issuer=local_idp.issuer,
            grpc_host="127.0.0.1",
            grpc_port=0,
            bsn_pepper="ops-pepper",  # type: ignore[arg-type]
        )
        running = create_server(settings, build_deps(settings), verifier_for(settings))
        running.start()
        try:
            yield InProcess(f"127.0.0.1:{running.port}")
        finally:
            running.stop(1).wait()


def _points(name: str) -> list[tuple[dict[str, object], object]]:
    data = _install()[0].get_metrics_data()
    found: list[tuple[dict[str, object], object]] = []
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found.extend((dict(p.attributes or {}), p) for p in metric.data.data_points)
    return found


def test_every_rpc_is_counted_by_method_and_code_and_health_checks_are_not(
    identity: InProcess, tokens: Tokens
) -> None:
    with grpc.insecure_channel(identity.target) as channel:
        stub = id_grpc.IdentityServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        token = bearer(tokens.user("dr.jansen"))
        for _ in range(3):
            stub.ListOrganisations(id_rpc.ListOrganisationsRequest(page_size=2), metadata=token)
        for _ in range(2):
            with pytest.raises(grpc.RpcError):
                stub.ListOrganisations(id_rpc.ListOrganisationsRequest())  # no token
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetOrganisation(
                id_rpc.GetOrganisationRequest(name="organisations/nowhere"), metadata=token
            )
        for _ in range(4):
            health.Check(health_pb2.HealthCheckRequest())
    counts: Counter[tuple[object, object]] = Counter()
    for attributes, point in _points(sk_metrics.RPC_DURATION):
        key = (attributes["rpc.method"], attributes["rpc.grpc.status_code"])
        counts[key] += point.count  # type: ignore[attr-defined]
    assert counts[(LIST, "OK")] == 3
    assert counts[(LIST, "UNAUTHENTICATED")] == 2
    assert counts[(GET, missing.value.code().name)] == 1
    assert not any("Health" in str(method) for method, _ in counts), counts
    active = {
        attributes["rpc.method"]: point.value  # type: ignore[attr-defined]
        for attributes, point in _points(sk_metrics.RPC_ACTIVE)
    }
    assert active[LIST] == 0 and active[GET] == 0
    # Health checks make no spans; the service's calls do.
    names = [span.name for span in _install()[1].get_finished_spans()]
    assert any(name.endswith("ListOrganisations") for name in names), names
    assert not any("Health" in name for name in names), names


def test_domain_counters_have_their_documented_names(identity: InProcess) -> None:
    counters = sk_metrics.domain()
    counters.referral_transition("SENT", "ACCEPTED")
    counters.measurements("duplicate", 2)
    counters.authorize_decision("deny", "NO_CONSENT")
    counters.access_log_verified("ok")
    counters.outbox_lag("careplan", lambda: 1.5)
    [(attributes, point)] = _points(sk_metrics.MEASUREMENTS)
    assert attributes == {"result": "duplicate"} and point.value == 2  # type: ignore[attr-defined]
    [(attributes, point)] = _points(sk_metrics.OUTBOX_LAG)
    assert attributes == {"consumer": "careplan"} and point.value == 1.5  # type: ignore[attr-defined]
    [(attributes, _)] = _points(sk_metrics.AUTHORIZE_DECISIONS)
    assert attributes == {"decision": "deny", "basis": "NO_CONSENT"}

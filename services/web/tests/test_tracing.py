"""A page and the gRPC calls it makes are one trace: the Flask instrumentation's server span
is the parent of servicekit's client span, and the trace context goes out with the call."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from flask import Response
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from web.app import create_app
from web.config import Settings


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    found = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the first suite in this process sets it
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(found))
    return found


@pytest.fixture
def health_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A gRPC server with the standard health service that records the metadata it gets."""
    seen: list[dict[str, str]] = []

    class Recording(health.HealthServicer):  # type: ignore[misc]
        def Check(self, request: object, context: grpc.ServicerContext) -> object:  # noqa: N802
            seen.append({k: str(v) for k, v in context.invocation_metadata()})
            return super().Check(request, context)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(Recording(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", seen
    finally:
        server.stop(0).wait()


def test_a_page_and_its_grpc_calls_are_one_trace(
    exporter: InMemorySpanExporter,
    health_server: tuple[str, list[dict[str, str]]],
    tmp_path: Path,
) -> None:
    target, seen = health_server
    settings = Settings(
        oidc_issuer="http://127.0.0.1:9/realms/carenet",
        oidc_client_secret="s",  # type: ignore[arg-type]
        identity_target=target,
        referral_target=target,
        careplan_target=target,
        outcomes_target=target,
        secret_key="k" * 32,  # type: ignore[arg-type]
        session_dir=str(tmp_path),
        secure_cookies=False,
    )
    app = create_app(settings)
    channels = app.extensions["carenet_channels"]

    @app.get("/_page")
    def _page() -> Response:
        reply = health_pb2_grpc.HealthStub(channels.identity).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        return Response(str(reply.status))

    assert app.test_client().get("/_page").status_code == 200
    channels.close()
    spans = exporter.get_finished_spans()
    page = next(s for s in spans if s.kind == SpanKind.SERVER and "/_page" in s.name)
    call = next(s for s in spans if s.kind == SpanKind.CLIENT and "Health/Check" in s.name)
    assert call.context.trace_id == page.context.trace_id
    assert call.parent is not None and call.parent.span_id == page.context.span_id
    assert f"{page.context.trace_id:032x}" in seen[0]["traceparent"]

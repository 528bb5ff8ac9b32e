"""OpenTelemetry wiring. Configured from the standard ``OTEL_*`` environment variables.

With no ``OTEL_TRACES_EXPORTER`` / ``OTEL_EXPORTER_OTLP_*`` set, no traces are exported;
with no ``OTEL_METRICS_EXPORTER``, no metrics (servicekit.metrics). The gRPC server
interceptor is added by :func:`servicekit.server.create_server` (health checks and
reflection make no spans); database spans come from :func:`instrument_engine`.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from sqlalchemy import Engine


def configure_metrics(service_name: str) -> MeterProvider | None:
    """Installs a global meter provider when ``OTEL_METRICS_EXPORTER`` asks for one
    (``otlp``: to ``OTEL_EXPORTER_OTLP_*``, every ``OTEL_METRIC_EXPORT_INTERVAL`` ms;
    ``console``). The RPC and domain instruments (servicekit.metrics) then record."""
    exporter_name = os.environ.get("OTEL_METRICS_EXPORTER", "")
    if exporter_name in ("", "none") or os.environ.get("OTEL_SDK_DISABLED") == "true":
        return None
    if isinstance(metrics.get_meter_provider(), MeterProvider):
        return None  # already configured, e.g. by opentelemetry-instrument
    exporter: MetricExporter
    if exporter_name == "console":
        exporter = ConsoleMetricExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter()
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = MeterProvider(
        resource=resource, metric_readers=[PeriodicExportingMetricReader(exporter)]
    )
    metrics.set_meter_provider(provider)
    return provider


def configure_tracing(service_name: str) -> TracerProvider | None:
    """Installs a global tracer provider when the environment asks for one (and a meter
    provider, :func:`configure_metrics`)."""
    configure_metrics(service_name)
    if not tracing_requested():
        return None
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "")
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return None  # already configured, e.g. by opentelemetry-instrument
    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def tracing_requested() -> bool:
    """Whether the environment asks for traces to be exported."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    return exporter not in ("", "none") or bool(endpoint)


def tracing_configured() -> bool:
    """Whether spans are recorded: an SDK tracer provider is installed (by
    :func:`configure_tracing`, or by a test). Without one, server spans only cost time."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def statement_span(statement: str, system: str) -> AbstractContextManager[object]:
    """A client span for a statement run on the driver directly (which the SQLAlchemy
    instrumentation does not see), when spans are recorded. Parameters are never recorded."""
    if not tracing_configured():
        return nullcontext()
    return trace.get_tracer("servicekit.db").start_as_current_span(
        statement.split(None, 1)[0],
        kind=trace.SpanKind.CLIENT,
        attributes={"db.system": system, "db.statement": statement},
    )


def instrument_engine(engine: Engine) -> None:
    """Database spans, when traces are exported (otherwise the hooks only cost time)."""
    if tracing_requested():
        SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=False)

"""One trace from a client call, through the identity server, into its database query."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.config import Settings
from identity.main import deps_for
from identity.server import create_server
from servicekit.auth import verifier_for
from servicekit.channels import traced as traced_channel
from servicekit.db import make_engine
from testkit.fixtures import IDENTITY_TEST_PEPPER, Tokens, bearer
from testkit.idp import LocalIdp


@pytest.fixture
def traced(
    identity_db: str, local_idp: LocalIdp
) -> Iterator[tuple[rpc_grpc.IdentityServiceStub, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the server interceptor reads the global provider
    engine = make_engine(identity_db)
    SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=provider)
    settings = Settings(
        database_url=identity_db,
        oidc_issuer=local_idp.issuer,
        grpc_host="127.0.0.1",
        grpc_port=0,
        bsn_pepper=IDENTITY_TEST_PEPPER,  # type: ignore[arg-type]
    )
    running = create_server(
        settings, deps_for(engine, IDENTITY_TEST_PEPPER.encode()), verifier_for(settings)
    )
    running.start()
    channel = traced_channel(grpc.insecure_channel(f"127.0.0.1:{running.port}"), provider)
    try:
        yield rpc_grpc.IdentityServiceStub(channel), exporter
    finally:
        channel.close()
        running.stop(0).wait()
        SQLAlchemyInstrumentor().uninstrument()
        engine.dispose()


def test_a_call_is_one_trace_from_client_through_server_into_the_database(
    traced: tuple[rpc_grpc.IdentityServiceStub, InMemorySpanExporter], tokens: Tokens
) -> None:
    stub, exporter = traced
    reply = stub.Authorize(
        rpc.AuthorizeRequest(
            patient="patients/p-0001",
            data_category=pb.DATA_CATEGORY_CARE_PLAN,
            action=pb.ACTION_READ,
        ),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=5,
    )
    assert reply.decision == pb.DECISION_PERMIT
    spans = exporter.get_finished_spans()
    kinds = {s.kind for s in spans}
    assert trace.SpanKind.CLIENT in kinds
    assert trace.SpanKind.SERVER in kinds
    client = next(s for s in spans if s.kind == trace.SpanKind.CLIENT and "Authorize" in s.name)
    server = next(s for s in spans if s.kind == trace.SpanKind.SERVER and "Authorize" in s.name)
    queries = [s for s in spans if s.attributes and s.attributes.get("db.system") == "postgresql"]
    assert queries, [s.name for s in spans]
    trace_ids = {
        client.context.trace_id,
        server.context.trace_id,
        *(q.context.trace_id for q in queries),
    }
    assert len(trace_ids) == 1
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    assert all(q.parent is not None and q.parent.span_id == server.context.span_id for q in queries)
    # Spans carry no identifying data: no BSN, no patient id in statement parameters.
    for span in spans:
        for value in (span.attributes or {}).values():
            assert "111222333" not in str(value)

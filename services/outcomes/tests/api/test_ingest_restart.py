"""Killing the outcomes process in the middle of an ingest stream and sending the batch
again loses nothing and duplicates nothing."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import text

from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from outcomes.config import Settings
from outcomes.deps import Deps
from testkit.fixtures import IdentityService, Tokens, bearer
from testkit.processes import ServiceProcess, service_env

from .support import big_batch, chunks, enrolment_request, register_patients

TOTAL = 30_000


def _process(settings: Settings) -> ServiceProcess:
    env = service_env(
        "outcomes",
        {
            "database_url": settings.database_url,
            "oidc_issuer": settings.oidc_issuer,
            "grpc_host": "127.0.0.1",
            "grpc_port": "0",
            "identity_target": settings.identity_target,
            "oidc_client_id": "svc-outcomes",
            "oidc_client_secret": "svc-outcomes-secret",
            "ingest_chunk_rows": "2000",
        },
    )
    return ServiceProcess("outcomes", env).start()


def _count(deps: Deps) -> int:
    with deps.uow() as uow:
        return int(
            uow.session.execute(
                text("SELECT COUNT(*) FROM measurements WHERE source_record_id LIKE 'kill-%'")
            ).scalar_one()
        )


@pytest.mark.slow
def test_killing_the_service_mid_stream_and_retrying_loses_and_duplicates_nothing(
    settings: Settings, deps: Deps, identity_service: IdentityService, tokens: Tokens
) -> None:
    metadata = bearer(tokens.user("dr.jansen"))
    process = _process(settings)
    try:
        with grpc.insecure_channel(process.target) as channel:
            stub = rpc_grpc.OutcomesServiceStub(channel)
            ids = register_patients(identity_service, tokens.user("dr.jansen"), "kill", 20)
            stub.BatchCreateEnrolments(
                rpc.BatchCreateEnrolmentsRequest(requests=[enrolment_request(p) for p in ids]),
                metadata=metadata,
                timeout=30,
            )
            rows, bad = big_batch(ids, TOTAL, "kill")

            def slow() -> Iterator[rpc.IngestMeasurementsRequest]:
                for n, request in enumerate(chunks(rows, 1000)):
                    yield request
                    if n == 12:
                        deadline = time.monotonic() + 20
                        while _count(deps) == 0 and time.monotonic() < deadline:
                            time.sleep(0.05)
                        process.stop(signal.SIGKILL)
                        return

            with pytest.raises(grpc.RpcError) as caught:
                stub.IngestMeasurements(slow(), metadata=metadata, timeout=60)
            assert caught.value.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.CANCELLED,
                grpc.StatusCode.UNKNOWN,
            )
        stored_before_retry = _count(deps)
        assert 0 < stored_before_retry < TOTAL - len(bad)
    finally:
        process.stop()
    process = _process(settings)
    try:
        with grpc.insecure_channel(process.target) as channel:
            stub = rpc_grpc.OutcomesServiceStub(channel)
            reply = stub.IngestMeasurements(chunks(rows), metadata=metadata, timeout=120)
    finally:
        process.stop()
    assert reply.accepted + reply.duplicates == TOTAL - len(bad)
    assert reply.duplicates == stored_before_retry
    assert reply.rejected == len(bad)
    assert _count(deps) == TOTAL - len(bad)

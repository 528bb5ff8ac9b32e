"""servicekit.service_server: a service's server from its servicer and settings."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from servicekit.config import ServiceSettings
from servicekit.service_server import grpc_service_of, server_factory, service_server


class Identity(rpc_grpc.IdentityServiceServicer):
    def ListOrganisations(  # noqa: N802 - the generated method name
        self, request: rpc.ListOrganisationsRequest, context: grpc.ServicerContext
    ) -> rpc.ListOrganisationsResponse:
        return rpc.ListOrganisationsResponse(next_page_token="reached")


def test_the_service_is_found_from_the_servicer() -> None:
    service = grpc_service_of(Identity())  # type: ignore[abstract]
    assert service.full_name == "carenet.identity.v1.IdentityService"
    assert service.add_to_server is rpc_grpc.add_IdentityServiceServicer_to_server
    with pytest.raises(TypeError):
        grpc_service_of(object())


def test_a_server_from_settings_serves_health_and_the_service() -> None:
    settings = ServiceSettings(
        database_url="postgresql+psycopg://x/y",
        oidc_issuer="http://127.0.0.1:9/realms/carenet",
        oidc_audience="carenet-identity",
        grpc_host="127.0.0.1",
        grpc_port=0,
    )
    running = service_server(
        settings,
        Identity(),  # type: ignore[abstract]
        domain="identity.carenet",
        verifier=None,
    )
    running.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            answer = check(
                health_pb2.HealthCheckRequest(service="carenet.identity.v1.IdentityService"),
                timeout=5,
            )
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            reply = rpc_grpc.IdentityServiceStub(channel).ListOrganisations(
                rpc.ListOrganisationsRequest(), timeout=5
            )
            assert reply.next_page_token == "reached"
    finally:
        running.stop(0).wait()


def test_a_server_factory_builds_the_servicer_from_the_deps() -> None:
    made: list[str] = []

    def servicer(deps: str) -> Identity:
        made.append(deps)
        return Identity()  # type: ignore[abstract]

    create_server = server_factory(servicer, domain="identity.carenet")
    settings = ServiceSettings(
        database_url="postgresql+psycopg://x/y",
        oidc_issuer="http://127.0.0.1:9/realms/carenet",
        oidc_audience="carenet-identity",
        grpc_host="127.0.0.1",
        grpc_port=0,
    )
    running = create_server(settings, "the deps", None)
    running.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="carenet.identity.v1.IdentityService"),
                timeout=5,
            )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        running.stop(0).wait()
    assert made == ["the deps"]

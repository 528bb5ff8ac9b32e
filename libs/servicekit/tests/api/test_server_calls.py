"""What the server factory does on every call, on a real server with real tokens.

The server is ``servicekit.server.create_server`` serving all four carenet services (their
generated registrations; only a few methods are implemented, the others are never reached
by these calls) with a real verifier against the local issuer. Calls are made through a
generic channel, so that any body, also one that is no message at all, can be sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import grpc
import jwt
import pytest
from google.protobuf import message_factory, struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from carenet.careplan.v1 import careplan_service_pb2, careplan_service_pb2_grpc
from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from carenet.outcomes.v1 import outcomes_service_pb2, outcomes_service_pb2_grpc
from carenet.referral.v1 import referral_service_pb2, referral_service_pb2_grpc
from servicekit import decoding
from servicekit.auth import ON_BEHALF_OF_HEADER, JwksCache, TokenVerifier, current_principal
from servicekit.paging import Page, Paging
from servicekit.server import RunningServer, create_server
from testkit.fixtures import Tokens
from testkit.idp import LocalIdp
from testkit.rpc import failure

DOMAIN = "test.carenet"
KEY = b"shared-by-the-replicas-of-one-service"
SERVICES: list[tuple[ModuleType, ModuleType, str]] = [
    (rpc, rpc_grpc, "IdentityService"),
    (referral_service_pb2, referral_service_pb2_grpc, "ReferralService"),
    (careplan_service_pb2, careplan_service_pb2_grpc, "CarePlanService"),
    (outcomes_service_pb2, outcomes_service_pb2_grpc, "OutcomesService"),
]
# Bodies no message can be decoded from: a truncated tag, a truncated varint, and a
# length-delimited field longer than the body.
UNDECODABLE = [b"\xff", b"\x08\xff", b"\x0a\xff\xff\xff\xff\x0f"]
DR_DEVRIES_SUB = "cc61dd58-6cf9-5538-9799-2d321a471029"


@dataclass(frozen=True)
class Method:
    path: str
    client_streaming: bool
    server_streaming: bool


METHODS = [
    Method(f"/{service.full_name}/{m.name}", m.client_streaming, m.server_streaming)
    for module, _grpc, name in SERVICES
    for service in [module.DESCRIPTOR.services_by_name[name]]
    for m in service.methods
]


class EchoIdentity(rpc_grpc.IdentityServiceServicer):
    """Answers with who the server took the caller to be; pages through two organisations."""

    def GetOrganisation(  # noqa: N802 - the generated method name
        self, request: rpc.GetOrganisationRequest, context: grpc.ServicerContext
    ) -> pb.Organisation:
        caller = current_principal()
        return pb.Organisation(
            name=request.name,
            display_name=f"{caller.subject}|{caller.client_id}|{caller.on_behalf_of}",
        )

    def ListOrganisations(  # noqa: N802 - the generated method name
        self, request: rpc.ListOrganisationsRequest, context: grpc.ServicerContext
    ) -> rpc.ListOrganisationsResponse:
        paging = Paging(request, "orgs")
        after = paging.page.after()
        current = "o-2" if after == "o-1" else "o-1"
        page = Page([current], {"after": current} if current == "o-1" else None)
        return rpc.ListOrganisationsResponse(
            organisations=[pb.Organisation(name=f"organisations/{current}")],
            next_page_token=paging.token(page),
        )


class CountingOutcomes(outcomes_service_pb2_grpc.OutcomesServiceServicer):
    """Reads its client stream to the end, as a real ingest does."""

    def IngestMeasurements(  # noqa: N802 - the generated method name
        self,
        request_iterator: Iterator[outcomes_service_pb2.IngestMeasurementsRequest],
        context: grpc.ServicerContext,
    ) -> outcomes_service_pb2.IngestMeasurementsResponse:
        for _request in request_iterator:
            pass
        return outcomes_service_pb2.IngestMeasurementsResponse()


def _start(local_idp: LocalIdp, key: bytes) -> RunningServer:
    def register(server: grpc.Server) -> None:
        rpc_grpc.add_IdentityServiceServicer_to_server(EchoIdentity(), server)  # type: ignore[abstract]
        outcomes_service_pb2_grpc.add_OutcomesServiceServicer_to_server(
            CountingOutcomes(),  # type: ignore[abstract]
            server,
        )
        for _module, grpc_module, name in SERVICES[1:3]:
            servicer = getattr(grpc_module, f"{name}Servicer")()
            getattr(grpc_module, f"add_{name}Servicer_to_server")(servicer, server)

    running = create_server(
        host="127.0.0.1",
        port=0,
        domain=DOMAIN,
        service_names=[
            module.DESCRIPTOR.services_by_name[name].full_name for module, _g, name in SERVICES
        ],
        register=register,
        verifier=TokenVerifier(
            issuer=local_idp.issuer,
            audience="carenet-identity",
            jwks=JwksCache(local_idp.jwks_url),
        ),
        max_workers=4,
        page_token_key=key,
    )
    running.start()
    return running


@pytest.fixture(scope="module")
def channel(local_idp: LocalIdp) -> Iterator[grpc.Channel]:
    running = _start(local_idp, KEY)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as opened:
        yield opened
    running.stop(0).wait()


def call(
    channel: grpc.Channel, method: Method, body: bytes, metadata: tuple[tuple[str, str], ...]
) -> Any:
    """The method called with ``body`` as its (only) request message, raw."""
    raw: Any = channel  # no (de)serializers: bytes in, bytes out
    if method.client_streaming and method.server_streaming:
        return list(raw.stream_stream(method.path)(iter([body]), metadata=metadata, timeout=10))
    if method.client_streaming:
        return raw.stream_unary(method.path)(iter([body]), metadata=metadata, timeout=10)
    if method.server_streaming:
        return list(raw.unary_stream(method.path)(body, metadata=metadata, timeout=10))
    return raw.unary_unary(method.path)(body, metadata=metadata, timeout=10)


def refused(
    channel: grpc.Channel, method: Method, body: bytes, metadata: tuple[tuple[str, str], ...]
) -> Any:
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, method, body, metadata)
    return failure(caught.value)


def auth(token: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"), *extra)


def sub(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


# --------------------------------------------------------------------------- on behalf of


@pytest.mark.parametrize(
    "caller",
    ["dr.jansen", "pat.dewit", "svc-referral", "carenet-municipality"],
    ids=["personal token", "patient", "service client", "partner system"],
)
def test_the_on_behalf_of_header_from_anyone_but_a_delegate_is_refused_on_every_rpc(
    channel: grpc.Channel, tokens: Tokens, caller: str
) -> None:
    token = (
        tokens.client(caller)
        if caller.startswith(("svc-", "carenet-"))
        else tokens.patient(caller)
        if caller.startswith("pat.")
        else tokens.user(caller)
    )
    metadata = auth(token, (ON_BEHALF_OF_HEADER, DR_DEVRIES_SUB))
    assert len(METHODS) >= 50
    for method in METHODS:
        fail = refused(channel, method, b"", metadata)
        assert fail.code == grpc.StatusCode.PERMISSION_DENIED, method.path
        assert (fail.reason, fail.domain, fail.error_infos) == (
            "ON_BEHALF_OF_NOT_ALLOWED",
            DOMAIN,
            1,
        ), method.path
        assert DR_DEVRIES_SUB not in fail.message


def _echo(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> list[str]:
    stub = rpc_grpc.IdentityServiceStub(channel)
    reply = stub.GetOrganisation(
        rpc.GetOrganisationRequest(name="organisations/gp-de-linde"), metadata=metadata, timeout=10
    )
    return reply.display_name.split("|")


def test_a_delegate_acts_for_the_person_it_names_and_the_server_keeps_both(
    channel: grpc.Channel, tokens: Tokens
) -> None:
    kis = tokens.client("carenet-kis")
    metadata = auth(kis, (ON_BEHALF_OF_HEADER, DR_DEVRIES_SUB))
    assert _echo(channel, metadata) == [sub(kis), "carenet-kis", DR_DEVRIES_SUB]
    assert _echo(channel, auth(kis)) == [sub(kis), "carenet-kis", ""]


def test_an_empty_header_counts_as_none(channel: grpc.Channel, tokens: Tokens) -> None:
    jansen = tokens.user("dr.jansen")
    assert _echo(channel, auth(jansen, (ON_BEHALF_OF_HEADER, ""))) == [
        sub(jansen),
        "carenet-kis",
        "",
    ]


def test_a_delegate_naming_two_people_is_refused(channel: grpc.Channel, tokens: Tokens) -> None:
    metadata = auth(
        tokens.client("carenet-kis"),
        (ON_BEHALF_OF_HEADER, DR_DEVRIES_SUB),
        (ON_BEHALF_OF_HEADER, "be21ba23-a345-5af6-9768-5903b37b0418"),
    )
    fail = refused(channel, METHODS[0], b"", metadata)
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ON_BEHALF_OF")
    assert fail.field_violations == (ON_BEHALF_OF_HEADER,)


def test_without_a_token_the_header_is_not_even_looked_at(channel: grpc.Channel) -> None:
    fail = refused(channel, METHODS[0], b"", ((ON_BEHALF_OF_HEADER, DR_DEVRIES_SUB),))
    assert (fail.code, fail.reason) == (grpc.StatusCode.UNAUTHENTICATED, "MISSING_TOKEN")


# --------------------------------------------------------------------------- bodies


@pytest.mark.parametrize("body", UNDECODABLE, ids=["tag", "varint", "length"])
def test_an_undecodable_body_is_invalid_argument_with_a_status_on_every_rpc(
    channel: grpc.Channel, tokens: Tokens, body: bytes
) -> None:
    metadata = auth(tokens.user("dr.jansen"))
    for method in METHODS:
        fail = refused(channel, method, body, metadata)
        assert fail.code == grpc.StatusCode.INVALID_ARGUMENT, method.path
        assert (fail.reason, fail.domain, fail.error_infos) == ("MALFORMED_REQUEST", DOMAIN, 1)
        assert fail.field_violations == ("request",)


def test_an_undecodable_body_to_the_health_service_is_invalid_argument_too(
    channel: grpc.Channel,
) -> None:
    health = Method("/grpc.health.v1.Health/Check", False, False)
    fail = refused(channel, health, UNDECODABLE[0], ())
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST")
    assert call(channel, health, b"", ()) == b"\x08\x01"  # SERVING: a good body still works


def test_an_undecodable_body_without_a_token_is_unauthenticated(channel: grpc.Channel) -> None:
    fail = refused(channel, METHODS[0], UNDECODABLE[0], ())
    assert (fail.code, fail.reason) == (grpc.StatusCode.UNAUTHENTICATED, "MISSING_TOKEN")


# --------------------------------------------------------------------------- page tokens


def _list(channel: grpc.Channel, token: str, page_token: str = "") -> rpc.ListOrganisationsResponse:
    stub = rpc_grpc.IdentityServiceStub(channel)
    reply: rpc.ListOrganisationsResponse = stub.ListOrganisations(
        rpc.ListOrganisationsRequest(page_token=page_token), metadata=auth(token), timeout=10
    )
    return reply


def test_page_tokens_are_good_at_any_replica_with_the_same_key_and_no_other(
    channel: grpc.Channel, local_idp: LocalIdp, tokens: Tokens
) -> None:
    jansen = tokens.user("dr.jansen")
    first = _list(channel, jansen)
    assert first.next_page_token
    replica = _start(local_idp, KEY)
    stranger = _start(local_idp, b"another-key-of-another-deployment")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{replica.port}") as replica_channel:
            second = _list(replica_channel, jansen, first.next_page_token)
        assert [o.name for o in second.organisations] == ["organisations/o-2"]
        assert second.next_page_token == ""
        with (
            grpc.insecure_channel(f"127.0.0.1:{stranger.port}") as stranger_channel,
            pytest.raises(grpc.RpcError) as caught,
        ):
            _list(stranger_channel, jansen, first.next_page_token)
        fail = failure(caught.value)
        assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
        assert fail.field_violations == ("page_token",)
    finally:
        replica.stop(0).wait()
        stranger.stop(0).wait()


# --------------------------------------------------------------------------- text guards


def _set_nul(message: Message, prefix: str, depth: int = 0) -> str:
    """Puts a NUL into the first string field reachable in ``message``; its path, or ""."""
    if depth > 4:
        return ""
    for field in message.DESCRIPTOR.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue
        name = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                getattr(message, field.name).append("a\x00b")
                return f"{name}[0]"
            setattr(message, field.name, "a\x00b")
            return name
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                item = getattr(message, field.name).add()
                path = _set_nul(item, f"{name}[0].", depth + 1)
                if path:
                    return path
                getattr(message, field.name).pop()
                continue
            path = _set_nul(getattr(message, field.name), f"{name}.", depth + 1)
            if path:
                return path
            message.ClearField(field.name)
    return ""


def _nul_bodies() -> list[tuple[Method, bytes, str]]:
    bodies = []
    for module, _grpc, name in SERVICES:
        for m in module.DESCRIPTOR.services_by_name[name].methods:
            request = message_factory.GetMessageClass(m.input_type)()
            path = _set_nul(request, "")
            if path:
                method = Method(
                    f"/{m.full_name.rsplit('.', 1)[0]}/{m.name}",
                    m.client_streaming,
                    m.server_streaming,
                )
                bodies.append((method, request.SerializeToString(), path))
    return bodies


def test_a_nul_in_any_string_of_any_request_is_invalid_argument_naming_the_field(
    channel: grpc.Channel, tokens: Tokens
) -> None:
    """PostgreSQL text cannot hold NUL; every service refuses it in the server factory's
    decoding step, before the method runs."""
    metadata = auth(tokens.user("dr.jansen"))
    bodies = _nul_bodies()
    assert len(bodies) >= 45
    for method, body, path in bodies:
        fail = refused(channel, method, body, metadata)
        assert (fail.code, fail.reason, fail.domain) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_CHARACTERS",
            DOMAIN,
        ), method.path
        assert fail.field_violations == (path,), method.path


def test_nul_is_found_in_nested_repeated_and_map_fields(
    channel: grpc.Channel, tokens: Tokens
) -> None:
    stub = rpc_grpc.IdentityServiceStub(channel)
    request = rpc.BatchAuthorizeRequest(
        patients=["patients/p-0001", "patients/p\x00"],
        subject=pb.Subject(user="u", roles=["gp", "x\x00"]),
        purpose="fine",
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchAuthorize(request, metadata=auth(tokens.user("dr.jansen")), timeout=10)
    fail = failure(caught.value)
    assert fail.reason == "INVALID_CHARACTERS"
    assert set(fail.field_violations) == {"patients[1]", "subject.roles[1]"}
    struct = struct_pb2.Struct()
    struct.update({"ok": "x", "bad\x00key": "y", "nested": {"deep": "z\x00"}})
    violations = decoding.nul_violations(struct)
    assert sorted(v.field for v in violations) == [
        "fields",
        "fields.nested.struct_value.fields.deep.string_value",
    ]


def test_a_good_body_with_zero_bytes_is_not_refused(channel: grpc.Channel, tokens: Tokens) -> None:
    """Zero bytes outside strings (a length of 0, a fixed-width number) are no NUL text."""
    request = rpc.GetOrganisationRequest(name="organisations/gp-de-linde")
    body = request.SerializeToString() + b"\x7a\x00"  # an unknown empty field 15
    assert b"\x00" in body
    reply = call(
        channel,
        Method("/carenet.identity.v1.IdentityService/GetOrganisation", False, False),
        body,
        auth(tokens.user("dr.jansen")),
    )
    assert pb.Organisation.FromString(reply).name == "organisations/gp-de-linde"


def test_a_status_never_exceeds_what_grpc_carries_in_trailers(
    channel: grpc.Channel, tokens: Tokens
) -> None:
    """Five hundred bad strings: the status names the first ten and says how many more."""
    stub = rpc_grpc.IdentityServiceStub(channel)
    request = rpc.BatchAuthorizeRequest(
        patients=[f"patients/{'x' * 300}\x00{i}" for i in range(500)]
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchAuthorize(request, metadata=auth(tokens.user("dr.jansen")), timeout=10)
    fail = failure(caught.value)
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CHARACTERS")
    assert fail.field_violations == tuple(f"patients[{i}]" for i in range(10))
    assert fail.message.endswith("; and 490 more")

"""Resolving the person a delegate acts for (servicekit.delegation), as services do through
identity's ResolveDelegation: the answer, its bounded cache, and failing closed.

identity is a fake here (a unit test): a real gRPC server in this process whose directory
holds one GP of gp-de-linde; it counts the questions. The end-to-end behaviour against the
real identity is tested in referral's API tests (tests/api/test_on_behalf_of.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest

from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from servicekit.auth import OnBehalfOfNotAllowed, Principal
from servicekit.authorization import IdentityUnavailable
from servicekit.delegation import MAX_TTL_SECONDS, IdentityDelegations

JANSEN = "dr-jansen-id"
DEVRIES = "dr-devries-id"


@dataclass
class FakeIdentity(rpc_grpc.IdentityServiceServicer):
    active: set[str] = field(default_factory=lambda: {JANSEN})
    down: bool = False
    questions: list[rpc.ResolveDelegationRequest] = field(default_factory=list)
    answer_for: str = ""  # answer about this person instead of the one asked about

    def ResolveDelegation(  # noqa: N802 - the generated method name
        self, request: rpc.ResolveDelegationRequest, context: grpc.ServicerContext
    ) -> rpc.ResolveDelegationResponse:
        self.questions.append(request)
        if self.down:
            context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        person = request.subject.on_behalf_of
        if "delegate" not in request.subject.roles or person not in self.active:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "not allowed")
        return rpc.ResolveDelegationResponse(
            person=self.answer_for or person,
            roles=["gp", "service", "delegate"],  # a system role must never be taken over
            organisation="organisations/gp-de-linde",
            care_group="organisations/cg-zuidoost",
        )


@pytest.fixture
def identity() -> Iterator[tuple[FakeIdentity, grpc.Channel]]:
    fake = FakeIdentity()  # type: ignore[abstract]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    rpc_grpc.add_IdentityServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield fake, channel
    server.stop(0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def kis(person: str, roles: frozenset[str] = frozenset({"delegate"})) -> Principal:
    return Principal(
        subject="kis-account",
        client_id="carenet-kis",
        organisation="organisations/gp-de-linde",
        care_group="organisations/cg-zuidoost",
        roles=roles,
        on_behalf_of=person,
    )


def test_the_call_runs_with_the_persons_roles_and_keeps_the_client(
    identity: tuple[FakeIdentity, grpc.Channel],
) -> None:
    fake, channel = identity
    acting = IdentityDelegations(channel).resolve(kis(JANSEN))
    assert acting.roles == {"gp"}
    assert (acting.subject, acting.client_id, acting.on_behalf_of) == (
        "kis-account",
        "carenet-kis",
        JANSEN,
    )
    assert (acting.organisation, acting.care_group) == (
        "organisations/gp-de-linde",
        "organisations/cg-zuidoost",
    )
    assert acting.client_roles == frozenset({"delegate"})
    assert acting.acts_for_person
    assert acting.responsible_user == JANSEN
    # identity was asked with the client's own roles and the person named
    (question,) = fake.questions
    assert (list(question.subject.roles), question.subject.on_behalf_of) == (["delegate"], JANSEN)


def test_a_person_identity_does_not_vouch_for_is_refused(
    identity: tuple[FakeIdentity, grpc.Channel],
) -> None:
    _fake, channel = identity
    with pytest.raises(OnBehalfOfNotAllowed) as caught:
        IdentityDelegations(channel).resolve(kis(DEVRIES))
    assert caught.value.reason == "ON_BEHALF_OF_NOT_ALLOWED"
    assert DEVRIES not in caught.value.message


def test_an_answer_about_someone_else_is_not_taken(
    identity: tuple[FakeIdentity, grpc.Channel],
) -> None:
    fake, channel = identity
    fake.answer_for = "someone-else"
    with pytest.raises(OnBehalfOfNotAllowed):
        IdentityDelegations(channel).resolve(kis(JANSEN))


def test_answers_are_reused_for_the_cache_time_and_no_longer(
    identity: tuple[FakeIdentity, grpc.Channel],
) -> None:
    fake, channel = identity
    clock = Clock()
    delegations = IdentityDelegations(channel, ttl_seconds=30, clock=clock)
    delegations.resolve(kis(JANSEN))
    with pytest.raises(OnBehalfOfNotAllowed):
        delegations.resolve(kis(DEVRIES))
    clock.now += 29
    delegations.resolve(kis(JANSEN))
    with pytest.raises(OnBehalfOfNotAllowed):
        delegations.resolve(kis(DEVRIES))
    assert len(fake.questions) == 2
    # dr.jansen leaves the practice: within the cache time the service still acts for her
    # (identity's Authorize does not: it decides from its directory), after it no longer.
    fake.active.clear()
    clock.now += 2
    with pytest.raises(OnBehalfOfNotAllowed):
        delegations.resolve(kis(JANSEN))
    assert len(fake.questions) == 3


def test_the_cache_is_per_client_and_person(identity: tuple[FakeIdentity, grpc.Channel]) -> None:
    fake, channel = identity
    delegations = IdentityDelegations(channel, ttl_seconds=30, clock=Clock())
    delegations.resolve(kis(JANSEN))
    # another token of the same client that lacks the delegate role is asked about anew
    with pytest.raises(OnBehalfOfNotAllowed):
        delegations.resolve(kis(JANSEN, frozenset({"provider"})))
    assert len(fake.questions) == 2


def test_identity_unreachable_fails_closed_and_is_not_cached(
    identity: tuple[FakeIdentity, grpc.Channel],
) -> None:
    fake, channel = identity
    fake.down = True
    delegations = IdentityDelegations(channel, ttl_seconds=30, deadline_seconds=0.5)
    with pytest.raises(IdentityUnavailable):
        delegations.resolve(kis(JANSEN))
    fake.down = False
    assert delegations.resolve(kis(JANSEN)).roles == {"gp"}


@pytest.mark.parametrize("ttl", [-1.0, MAX_TTL_SECONDS + 1])
def test_the_cache_time_is_bounded(identity: tuple[FakeIdentity, grpc.Channel], ttl: float) -> None:
    with pytest.raises(ValueError, match="cache time"):
        IdentityDelegations(identity[1], ttl_seconds=ttl)


def test_without_a_cache_every_call_is_asked(identity: tuple[FakeIdentity, grpc.Channel]) -> None:
    fake, channel = identity
    delegations = IdentityDelegations(channel, ttl_seconds=0)
    delegations.resolve(kis(JANSEN))
    delegations.resolve(kis(JANSEN))
    assert len(fake.questions) == 2

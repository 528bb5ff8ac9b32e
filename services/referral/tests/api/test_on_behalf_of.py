"""Who a referral is attributed to (issue 11 point 2): without the on-behalf-of header the
referrer, the history's actor, the event's actor and the access log's responsible user are
the caller; a person's own token that names someone else in ``x-carenet-on-behalf-of`` is
refused before anything is read or written."""

from __future__ import annotations

import grpc
from sqlalchemy import text

from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from servicekit.auth import ON_BEHALF_OF_HEADER
from testkit.fixtures import Tokens

from ..conftest import ReferralServer
from .helpers import as_user, count, fails, listed_offer, refer, subject_of


def _written(server: ReferralServer) -> tuple[int, ...]:
    return (
        count(server.engine, "SELECT count(*) FROM referrals"),
        count(server.engine, "SELECT count(*) FROM referral_history"),
        count(server.engine, "SELECT count(*) FROM outbox"),
        count(server.engine, "SELECT count(*) FROM request_records"),
        server.access_log_count(),
    )


def test_a_personal_token_cannot_refer_on_behalf_of_someone_else(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    offer = listed_offer(stub, tokens, "obo")
    jansen = as_user(tokens, "dr.jansen")
    before = _written(referral_server)
    refused = fails(
        lambda: refer(
            stub,
            tokens,
            "p-0001",
            offer,
            request_id="obo-1",
            metadata=(*jansen, (ON_BEHALF_OF_HEADER, subject_of(tokens, "dr.devries"))),
        )
    )
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ON_BEHALF_OF_NOT_ALLOWED",
    )
    assert _written(referral_server) == before


def test_without_the_header_the_caller_is_the_referrer_actor_and_responsible_user(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    caller = subject_of(tokens, "dr.jansen")
    offer = listed_offer(stub, tokens, "self")
    referral = refer(stub, tokens, "p-0002", offer)
    with referral_server.identity_engine.connect() as conn:
        logged = conn.execute(
            text(
                "SELECT user_id, responsible_user, action, decision FROM access_log"
                " ORDER BY id DESC LIMIT 1"
            )
        ).one()
    assert tuple(logged) == (caller, caller, "create", "permit")
    assert referral.referrer == caller
    assert [h.actor for h in referral.history] == [caller]
    events = stub.WatchReferralEvents(
        rpc.WatchReferralEventsRequest(patient="patients/p-0002", no_follow=True),
        metadata=as_user(tokens, "dr.jansen"),
        timeout=10,
    )
    assert [e.actor for e in events if e.referral == referral.name] == [caller]

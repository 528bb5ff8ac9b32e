"""identity's access log holds exactly one entry per access to referral data, describing the
access that happened (issue 11, points 5 and 6), read from identity's ``access_log`` table:

- every event WatchReferralEvents delivers is a read, decided when it is delivered: a GP
  whose care relationship ended while his stream was open gets no later event, and the
  refusal is logged;
- a caller who is no party to a referral changes nothing and is not logged: Transition and
  RecordOutcome answer it as GetReferral does (NOT_FOUND ``REFERRAL_NOT_FOUND`` like a
  referral that does not exist, ``ROLE_NOT_PERMITTED`` for a role that is no party);
- a CreateReferral that creates nothing is logged as what it did: the same request again
  reads the stored referral (a read), a duplicate of an open referral tells its name (a
  read of it); neither is logged as a create."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.access_log import entries_after, last_entry_id
from testkit.fixtures import IdentityService, Tokens, bearer, valid_bsn
from testkit.rpc import status_of

from ..conftest import ReferralServer
from .helpers import as_user, fails, listed_offer, refer


def _log(server: ReferralServer, after: int, patient: str = "") -> list[dict[str, Any]]:
    columns = (
        "patient_id",
        "organisation_id",
        "data_category",
        "action",
        "purpose",
        "decision",
        "reason",
    )
    return entries_after(server.identity_engine, after, columns, patient)


def _last_id(server: ReferralServer) -> int:
    return last_entry_id(server.identity_engine)


def _wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _summary(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(r["organisation_id"], r["data_category"], r["action"], r["decision"]) for r in rows]


def test_a_stream_stops_delivering_when_the_watchers_care_relationship_ends(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    referral_server: ReferralServer,
    identity_service: IdentityService,
) -> None:
    """dr.devries (gp-het-anker) refers his patient and follows her referrals; each event
    delivered is logged as a read. He ends his practice's care relationship: GetReferral is
    refused, and the event of the target accepting the referral is refused too (logged as
    a refusal) and not delivered."""
    patient = "p-stale-stream-1"
    devries = tokens.user("dr.devries")
    identity_service.register_patient(devries, patient, valid_bsn(1, 755_000_000))
    offer = listed_offer(stub, tokens, "stale-stream")
    referral = refer(stub, tokens, patient, offer, user="dr.devries")

    start = _last_id(referral_server)
    delivered: list[pb.ReferralEvent] = []
    stream = stub.WatchReferralEvents(
        rpc.WatchReferralEventsRequest(after_cursor=0, patient=f"patients/{patient}"),
        metadata=bearer(devries),
        timeout=60,
    )

    ended: list[grpc.StatusCode] = []

    def follow() -> None:
        try:
            for event in stream:
                delivered.append(event)
        except grpc.RpcError as exc:
            ended.append(exc.code())

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        assert _wait_for(lambda: len(delivered) == 1)
        assert delivered[0].type == pb.REFERRAL_EVENT_TYPE_CREATED
        # the delivered event is one read, permitted, with the stream's purpose
        (read,) = _log(referral_server, start, patient)
        assert _summary([read]) == [("gp-het-anker", "referral", "read", "permit")]
        assert read["purpose"] == "referral-events"

        with grpc.insecure_channel(identity_service.target) as channel:
            identity = id_grpc.IdentityServiceStub(channel)
            relationships = identity.ListCareRelationships(
                id_rpc.ListCareRelationshipsRequest(parent=f"patients/{patient}"),
                metadata=bearer(devries),
                timeout=10,
            ).care_relationships
            own = [
                r
                for r in relationships
                if r.organisation == "organisations/gp-het-anker" and not r.HasField("end_time")
            ]
            assert own
            for relationship in own:
                identity.EndCareRelationship(
                    id_rpc.EndCareRelationshipRequest(name=relationship.name),
                    metadata=bearer(devries),
                    timeout=10,
                )
        refused = fails(
            lambda: stub.GetReferral(
                rpc.GetReferralRequest(name=referral.name), metadata=bearer(devries), timeout=10
            )
        )
        assert refused.code is grpc.StatusCode.PERMISSION_DENIED

        before = _last_id(referral_server)
        stub.TransitionReferral(
            rpc.TransitionReferralRequest(name=referral.name, status=pb.REFERRAL_STATUS_ACCEPTED),
            metadata=as_user(tokens, "coach.degroot"),
            timeout=10,
        )

        def watcher_asked() -> bool:
            rows = _log(referral_server, before, patient)
            return any(r["organisation_id"] == "gp-het-anker" for r in rows)

        assert _wait_for(watcher_asked), "the accepted event was not decided for the watcher"
        time.sleep(0.5)  # a delivery, had there been one, would have been made by now
    finally:
        stream.cancel()
        follower.join(10)
    assert ended == [grpc.StatusCode.CANCELLED]  # by the test, not by an error
    assert [e.type for e in delivered] == [pb.REFERRAL_EVENT_TYPE_CREATED]
    after = _log(referral_server, before, patient)
    # the target's change (one entry), and the refused delivery to the watcher (one entry)
    assert sorted(_summary(after)) == sorted(
        [
            ("gli-beweegfit", "referral", "update", "permit"),
            ("gp-het-anker", "referral", "read", "deny"),
        ]
    )


@pytest.fixture(scope="module")
def referred(stub: rpc_grpc.ReferralServiceStub, tokens: Tokens) -> pb.Referral:
    """dr.jansen's (gp-de-linde) open referral of p-0001 to coach.degroot's offer."""
    return refer(stub, tokens, "p-0001", listed_offer(stub, tokens, "party-first"))


NON_PARTIES = [
    # the hospital treats p-0001; another practice; a coach of another organisation;
    # another patient
    "dr.smit",
    "dr.devries",
    "coach.visser",
    "pat.yilmaz",
]


def _change(stub: rpc_grpc.ReferralServiceStub, name: str, md: Any, which: str) -> Any:
    if which == "transition":
        return stub.TransitionReferral(
            rpc.TransitionReferralRequest(
                name=name, status=pb.REFERRAL_STATUS_CANCELLED, reason="not mine"
            ),
            metadata=md,
            timeout=10,
        )
    return stub.RecordReferralOutcome(
        rpc.RecordReferralOutcomeRequest(
            name=name, outcome=pb.ReferralOutcome(attendance=pb.ATTENDANCE_PARTIAL)
        ),
        metadata=md,
        timeout=10,
    )


@pytest.mark.parametrize("which", ["transition", "record"])
def test_a_non_party_changes_nothing_and_is_not_logged(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    referral_server: ReferralServer,
    referred: pb.Referral,
    which: str,
) -> None:
    patient, _, rid = referred.name.removeprefix("patients/").partition("/referrals/")
    names = [
        referred.name,
        f"patients/{patient}/referrals/no-such-referral",
        f"patients/p-9999/referrals/{rid}",  # no such patient
    ]
    for user in NON_PARTIES:
        md = as_user(tokens, user)
        before = _last_id(referral_server)
        answers = {
            status_of(
                lambda name=name, md=md: _change(stub, name, md, which)  # type: ignore[misc]
            ).SerializeToString(deterministic=True)
            for name in names
        }
        # the referral, a made-up one and one under a missing patient: one answer
        assert len(answers) == 1, user
        refused = fails(lambda md=md: _change(stub, referred.name, md, which))  # type: ignore[misc]
        assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "REFERRAL_NOT_FOUND")
        assert _log(referral_server, before) == [], user
    for user in ("analist.peters", "admin.zuidoost", "auditor.dekker"):
        before = _last_id(referral_server)
        refused = fails(
            lambda user=user: _change(stub, referred.name, as_user(tokens, user), which)  # type: ignore[misc]
        )
        assert (refused.code, refused.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_NOT_PERMITTED",
        )
        assert _log(referral_server, before) == [], user
    kis = bearer(tokens.client("carenet-kis"))  # gp-de-linde's KIS, acting as itself
    before = _last_id(referral_server)
    refused = fails(lambda: _change(stub, referred.name, kis, which))
    assert refused.reason == "ROLE_NOT_PERMITTED"
    assert _log(referral_server, before) == []
    # nothing changed
    current = stub.GetReferral(
        rpc.GetReferralRequest(name=referred.name), metadata=as_user(tokens, "dr.jansen")
    )
    assert current.status == pb.REFERRAL_STATUS_REQUESTED
    assert not current.HasField("outcome")


def test_a_partys_change_is_decided_and_logged_once(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    referral = refer(stub, tokens, "p-0001", listed_offer(stub, tokens, "party-change"))
    before = _last_id(referral_server)
    stub.TransitionReferral(
        rpc.TransitionReferralRequest(name=referral.name, status=pb.REFERRAL_STATUS_ACCEPTED),
        metadata=as_user(tokens, "coach.degroot"),
        timeout=10,
    )
    stub.RecordReferralOutcome(
        rpc.RecordReferralOutcomeRequest(
            name=referral.name, outcome=pb.ReferralOutcome(attendance=pb.ATTENDANCE_PARTIAL)
        ),
        metadata=as_user(tokens, "coach.degroot"),
        timeout=10,
    )
    assert _summary(_log(referral_server, before)) == [
        ("gli-beweegfit", "referral", "update", "permit"),
        ("gli-beweegfit", "referral", "update", "permit"),
    ]


def test_a_repeated_create_is_logged_as_the_read_it_is(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    offer = listed_offer(stub, tokens, "create-replay")

    before = _last_id(referral_server)
    first = refer(stub, tokens, "p-0001", offer, request_id="create-log-1")
    assert _summary(_log(referral_server, before)) == [
        ("gp-de-linde", "referral", "create", "permit")
    ]

    # the same request again: the stored referral is returned, read, not created
    before = _last_id(referral_server)
    again = refer(stub, tokens, "p-0001", offer, request_id="create-log-1")
    assert again.name == first.name
    assert _summary(_log(referral_server, before)) == [
        ("gp-de-linde", "referral", "read", "permit")
    ]


def test_a_duplicate_create_is_logged_as_the_read_it_is(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    offer = listed_offer(stub, tokens, "create-duplicate")
    refer(stub, tokens, "p-0001", offer, request_id="create-log-2")
    # another request for the same patient and offer by the same practice: a duplicate,
    # named to the caller (a read of the open referral), no create
    for request_id, user in (("create-log-3", "dr.jansen"), ("", "poh.bakker")):
        before = _last_id(referral_server)
        duplicate = fails(
            lambda request_id=request_id, user=user: refer(  # type: ignore[misc]
                stub, tokens, "p-0001", offer, request_id=request_id, user=user
            )
        )
        assert (duplicate.code, duplicate.reason) == (
            grpc.StatusCode.ALREADY_EXISTS,
            "DUPLICATE_OPEN_REFERRAL",
        )
        assert _summary(_log(referral_server, before)) == [
            ("gp-de-linde", "referral", "read", "permit")
        ]

"""Who a referral is attributed to (issue 11 point 2): without the on-behalf-of header the
referrer, the history's actor, the event's actor and the access log's responsible user are
the caller; a person's own token that names someone else in ``x-carenet-on-behalf-of`` is
refused before anything is read or written. A delegate (the practice's KIS) acting for a
person of its organisation runs the call as that person (servicekit.delegation, against
the real identity); naming anyone else is refused before anything is read, written or
logged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import text

from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from servicekit.auth import ON_BEHALF_OF_HEADER
from testkit.fixtures import IdentityService, Tokens, bearer, identity_command, identity_env
from testkit.idp import LocalIdp, repo_root

from ..conftest import ReferralServer
from .helpers import PROFILE, as_user, count, fails, listed_offer, refer, subject_of


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


# ------------------------------------------------ a delegate acting for a person, end to end

JANSEN = "be21ba23-a345-5af6-9768-5903b37b0418"  # dr.jansen, gp at gp-de-linde
BAKKER = "5e29e326-188f-5f54-9167-e26c902d7a71"  # poh.bakker, practice nurse at gp-de-linde
DEVRIES = "cc61dd58-6cf9-5538-9799-2d321a471029"  # dr.devries, gp at gp-het-anker
KIS_ACCOUNT = "f593cd7d-cc62-5ac5-898e-e9d97e2c2ae8"  # service-account-carenet-kis
NOBODY = "8c0e4a36-0000-4000-8000-000000000000"
# A former GP of gp-de-linde, known to the people directory but no longer active (a user
# disabled in the realm).
FORMER = "4d1f9a60-0000-4000-8000-0000000000f1"
FORMER_USER = {
    "id": FORMER,
    "username": "dr.vroeger",
    "enabled": False,
    "attributes": {"carenet_org": ["gp-de-linde"], "carenet_tenant": ["cg-zuidoost"]},
    "realmRoles": ["gp"],
}


@pytest.fixture(scope="module")
def former_gp_known(
    local_idp: LocalIdp, identity_service: IdentityService, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The people directory holds the demo realm's people and the former GP, deactivated:
    ``identity seed-demo`` (idempotent) run as a process on a copy of the demo realm export
    that also holds the disabled user (``IDENTITY_DEMO_REALM_FILE``), as an operator's
    directory sync would leave it."""
    demo_realm = repo_root() / "infra" / "keycloak" / "demo-realm.json"
    realm: dict[str, Any] = json.loads(demo_realm.read_text(encoding="utf-8"))
    realm["users"] = [*realm["users"], FORMER_USER]
    realm_file: Path = tmp_path_factory.mktemp("realm") / "realm.json"
    realm_file.write_text(json.dumps(realm), encoding="utf-8")
    env = identity_env(local_idp, identity_service.database_url, demo_realm_file=str(realm_file))
    identity_command(env, "seed-demo")


def _kis(tokens: Tokens, person: str) -> tuple[tuple[str, str], ...]:
    return (*bearer(tokens.client("carenet-kis")), (ON_BEHALF_OF_HEADER, person))


def _last_log_entry(server: ReferralServer) -> tuple[object, ...]:
    with server.identity_engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT user_id, responsible_user, access_point, roles, organisation_id,"
                " action, decision FROM access_log ORDER BY id DESC LIMIT 1"
            )
        ).one()
    return tuple(row)


def test_the_kis_acting_for_dr_jansen_refers_as_dr_jansen(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    """Issue 11 point 2, the way a KIS works: its own client-credentials token (role
    ``delegate``) names the GP; referral resolves her at identity and runs the whole call
    with her roles, so her role check passes; identity decides with her roles again."""
    assert subject_of(tokens, "dr.jansen") == JANSEN
    offer = listed_offer(stub, tokens, "kis")
    before = _written(referral_server)
    referral = refer(stub, tokens, "p-0002", offer, metadata=_kis(tokens, JANSEN))
    after = _written(referral_server)
    # one referral, one history entry, one event, no request record, one log entry
    assert tuple(b - a for a, b in zip(before, after, strict=True)) == (1, 1, 1, 0, 1)
    assert referral.referrer == JANSEN
    assert referral.referrer_organisation == "organisations/gp-de-linde"
    assert [h.actor for h in referral.history] == [JANSEN]
    # NEN 7513: the system is the user and the access point, the GP the responsible user.
    assert _last_log_entry(referral_server) == (
        KIS_ACCOUNT,
        JANSEN,
        "carenet-kis",
        "gp",
        "gp-de-linde",
        "create",
        "permit",
    )
    events = stub.WatchReferralEvents(
        rpc.WatchReferralEventsRequest(patient="patients/p-0002", no_follow=True),
        metadata=as_user(tokens, "dr.jansen"),
        timeout=10,
    )
    assert [e.actor for e in events if e.referral == referral.name] == [JANSEN]
    # The KIS reads it back for her, and her own token sees the same referral.
    read = stub.GetReferral(
        rpc.GetReferralRequest(name=referral.name), metadata=_kis(tokens, JANSEN), timeout=10
    )
    assert read.name == referral.name
    assert _last_log_entry(referral_server)[:2] == (KIS_ACCOUNT, JANSEN)


@pytest.mark.parametrize(
    "person",
    [DEVRIES, NOBODY, FORMER],
    ids=["a person of another organisation", "an unknown person", "a deactivated person"],
)
def test_the_kis_naming_someone_it_may_not_act_for_is_refused_with_nothing_written(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    referral_server: ReferralServer,
    former_gp_known: None,
    person: str,
) -> None:
    offer = listed_offer(stub, tokens, "kis-refused")
    before = _written(referral_server)
    refused = fails(
        lambda: refer(
            stub, tokens, "p-0002", offer, request_id="kis-x", metadata=_kis(tokens, person)
        )
    )
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ON_BEHALF_OF_NOT_ALLOWED",
    )
    assert person not in refused.message
    # Nothing written, and nothing logged at identity: no permit (nor any other entry) for
    # an access that did not happen; the call was refused before the method ran.
    assert _written(referral_server) == before
    # The same on a call that touches no patient (a role check would have seen the token's
    # role only): the person is resolved for every call.
    refused = fails(
        lambda: stub.FindOffers(
            rpc.FindOffersRequest(profile=PROFILE), metadata=_kis(tokens, person), timeout=10
        )
    )
    assert refused.reason == "ON_BEHALF_OF_NOT_ALLOWED"


def test_a_request_id_the_kis_used_for_one_person_is_not_replayed_for_another(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    """Request records are kept per token subject (the KIS); the same request_id and body
    for another person is another request, never the first person's referral."""
    offer = listed_offer(stub, tokens, "kis-rid")
    first = refer(
        stub, tokens, "p-0001", offer, request_id="kis-rid-1", metadata=_kis(tokens, JANSEN)
    )
    again = refer(
        stub, tokens, "p-0001", offer, request_id="kis-rid-1", metadata=_kis(tokens, JANSEN)
    )
    assert again.name == first.name
    before = _written(referral_server)
    reused = fails(
        lambda: refer(
            stub, tokens, "p-0001", offer, request_id="kis-rid-1", metadata=_kis(tokens, BAKKER)
        )
    )
    assert (reused.code, reused.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
    assert first.name not in reused.message
    # refused before identity was asked: nothing written, nothing logged
    assert _written(referral_server) == before


def test_a_person_without_a_referrer_role_is_refused_before_identity_is_asked(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    """A sport coach with a care relationship would be permitted by identity (it may read
    and write referral data of its patients), but only clinicians refer: that refusal
    depends on the caller alone, so it comes before identity and no permit is logged for a
    create that cannot happen."""
    offer = listed_offer(stub, tokens, "coach-refers")
    before = _written(referral_server)
    refused = fails(lambda: refer(stub, tokens, "p-0001", offer, user="coach.degroot"))
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ROLE_NOT_PERMITTED",
    )
    assert _written(referral_server) == before


def test_an_offer_off_the_menu_is_refused_before_identity_is_asked(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    before = _written(referral_server)
    refused = fails(lambda: refer(stub, tokens, "p-0001", "offers/no-such-offer"))
    assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "OFFER_NOT_FOUND")
    assert _written(referral_server) == before

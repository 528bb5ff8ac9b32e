"""ListReferrals across patients (``patients/-``) and WatchReferralEvents show a caller the
same referrals, each asked of identity with the referral's context and record holder (the
question of a read of that referral); and GetReferral by a caller who is no party to the
referral is refused before identity is asked, so the access log records no read that did
not happen.

Callers: coach.degroot, a lifestyle provider (gli-beweegfit) without a care relationship
with a patient it was sent (identity's referral-target basis); the KIS of gp-de-linde with
its own client-credentials token, acting as itself (identity's rule S); dr.jansen, a GP of
gp-de-linde with a care relationship."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from sqlalchemy import text

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.access_log import entries_after, last_entry_id
from testkit.fixtures import IdentityService, Tokens, bearer, valid_bsn
from testkit.rpc import status_of

from ..conftest import ReferralServer
from .helpers import as_user, fails, listed_offer, refer


def _log(server: ReferralServer, after: int) -> list[dict[str, Any]]:
    columns = ("patient_id", "organisation_id", "data_category", "action", "decision", "basis")
    return entries_after(server.identity_engine, after, columns)


def _last_id(server: ReferralServer) -> int:
    return last_entry_id(server.identity_engine)


def _listed(stub: rpc_grpc.ReferralServiceStub, md: Any) -> list[str]:
    names: list[str] = []
    token = ""
    while True:
        page = stub.ListReferrals(
            rpc.ListReferralsRequest(parent="patients/-", page_size=200, page_token=token),
            metadata=md,
            timeout=60,
        )
        names.extend(r.name for r in page.referrals)
        token = page.next_page_token
        if not token:
            return names


def _streamed(stub: rpc_grpc.ReferralServiceStub, md: Any) -> set[str]:
    events = stub.WatchReferralEvents(
        rpc.WatchReferralEventsRequest(after_cursor=0, no_follow=True), metadata=md, timeout=60
    )
    return {e.referral for e in events}


def _candidates(server: ReferralServer, org: str) -> int:
    """The care group's referrals the organisation made or receives."""
    with server.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM referrals WHERE care_group_id = 'cg-zuidoost'"
                    " AND :org IN (referrer_org_id, target_org_id)"
                ),
                {"org": org},
            ).scalar_one()
        )


@pytest.fixture(scope="module")
def sent(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, identity_service: IdentityService
) -> dict[str, pb.Referral]:
    """Referrals to coach.degroot's offer: of a new patient of gp-de-linde, with whom
    gli-beweegfit has no care relationship (``new``); of p-0001 by dr.jansen (``jansen``);
    of a new patient of gp-het-anker, by dr.devries (``anker``)."""
    new = "p-listream-1"
    identity_service.register_patient(tokens.user("dr.jansen"), new, valid_bsn(1, 744_000_000))
    anker = "p-listream-2"
    identity_service.register_patient(tokens.user("dr.devries"), anker, valid_bsn(2, 744_000_000))
    offer = listed_offer(stub, tokens, "listream")
    return {
        "new": refer(stub, tokens, new, offer),
        "jansen": refer(stub, tokens, "p-0001", offer),
        "anker": refer(stub, tokens, anker, offer, user="dr.devries"),
    }


CALLERS = {
    # caller -> (its organisation, the referrals of ``sent`` it must see)
    "provider without care relationship": ("gli-beweegfit", {"new", "jansen", "anker"}),
    "kis as itself": ("gp-de-linde", {"new", "jansen"}),
    "gp with a care relationship": ("gp-de-linde", {"new", "jansen"}),
}


def _metadata(tokens: Tokens, caller: str) -> Any:
    if caller == "kis as itself":
        return bearer(tokens.client("carenet-kis"))
    return as_user(tokens, "coach.degroot" if caller.startswith("provider") else "dr.jansen")


@pytest.mark.parametrize("caller", list(CALLERS))
def test_the_list_across_patients_shows_what_the_stream_shows(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    referral_server: ReferralServer,
    sent: dict[str, pb.Referral],
    caller: str,
) -> None:
    org, expected = CALLERS[caller]
    md = _metadata(tokens, caller)
    before = _last_id(referral_server)
    listed = _listed(stub, md)
    asked = _log(referral_server, before)
    streamed = _streamed(stub, md)

    assert len(listed) == len(set(listed))
    assert set(listed) == streamed
    mine = {key for key, r in sent.items() if r.name in set(listed)}
    assert mine == expected
    # newest first
    created = {r.name: r.create_time.ToNanoseconds() for r in sent.values()}
    order = [created[n] for n in listed if n in created]
    assert order == sorted(order, reverse=True)
    # one access-log entry per referral of the organisation asked about, none about
    # anything else; what identity permitted is what is listed
    assert len(asked) == _candidates(referral_server, org)
    assert {(row["organisation_id"], row["data_category"], row["action"]) for row in asked} == {
        (org, "referral", "read")
    }
    assert sum(row["decision"] == "permit" for row in asked) == len(listed)
    if caller.startswith("provider"):
        # the patient it has no relationship with: permitted as the referral's target
        (entry,) = [row for row in asked if row["patient_id"] == "p-listream-1"]
        assert (entry["decision"], entry["basis"]) == ("permit", "referral-target")


def test_a_non_party_reading_one_referral_is_refused_and_nothing_is_logged(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    referral_server: ReferralServer,
    sent: dict[str, pb.Referral],
) -> None:
    kis = bearer(tokens.client("carenet-kis"))
    anker = sent["anker"].name  # gp-het-anker's: gp-de-linde is no party to it
    ours = sent["jansen"].name

    before = _last_id(referral_server)
    for name in (anker, ours):
        refused = fails(
            lambda name=name: stub.GetReferral(  # type: ignore[misc]
                rpc.GetReferralRequest(name=name), metadata=kis, timeout=10
            )
        )
        # the KIS reads no single referral as itself, its organisation's or another's
        assert (refused.code, refused.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_NOT_PERMITTED",
        )
    assert _log(referral_server, before) == []

    # a person of an organisation that is no party: as if there were no such referral
    devries = as_user(tokens, "dr.devries")
    smit = as_user(tokens, "dr.smit")  # the hospital treats p-0001
    patient, _, rid = ours.removeprefix("patients/").partition("/referrals/")
    made_up = f"patients/{patient}/referrals/no-such-referral"
    elsewhere = f"patients/p-9999/referrals/{rid}"
    before = _last_id(referral_server)
    for md in (devries, smit):
        answers = {
            status_of(
                lambda name=name, md=md: stub.GetReferral(  # type: ignore[misc]
                    rpc.GetReferralRequest(name=name), metadata=md, timeout=10
                )
            ).SerializeToString(deterministic=True)
            for name in (ours, made_up, elsewhere)
        }
        assert len(answers) == 1
    refused = fails(
        lambda: stub.GetReferral(rpc.GetReferralRequest(name=ours), metadata=smit, timeout=10)
    )
    assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "REFERRAL_NOT_FOUND")
    assert _log(referral_server, before) == []

    # a party's read is decided and logged once
    before = _last_id(referral_server)
    stub.GetReferral(
        rpc.GetReferralRequest(name=anker), metadata=as_user(tokens, "dr.devries"), timeout=10
    )
    (entry,) = _log(referral_server, before)
    assert (entry["organisation_id"], entry["decision"]) == ("gp-het-anker", "permit")

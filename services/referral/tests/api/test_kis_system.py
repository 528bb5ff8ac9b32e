"""A KIS acting as itself (issue 14): the client-credentials token of ``carenet-kis`` (realm
role ``delegate``, organisation gp-de-linde) lists and follows the referrals its organisation
made or receives; every read is still decided and logged by identity, one entry per patient
or referral as for a person; another organisation's referrals stay out."""

from __future__ import annotations

import grpc
from sqlalchemy import text

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer

from ..conftest import ReferralServer
from .helpers import fails, listed_offer, refer

KIS_ACCOUNT = "f593cd7d-cc62-5ac5-898e-e9d97e2c2ae8"  # service-account-carenet-kis


def _log(server: ReferralServer, after: int) -> list[tuple[object, ...]]:
    with server.identity_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT user_id, responsible_user, access_point, patient_id, action, decision"
                " FROM access_log WHERE id > :after ORDER BY id"
            ),
            {"after": after},
        ).all()
    return [tuple(r) for r in rows]


def _last_id(server: ReferralServer) -> int:
    with server.identity_engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM access_log")).scalar_one())


def _ours(server: ReferralServer) -> dict[str, str]:
    """gp-de-linde's referrals (made or received) in cg-zuidoost: name -> patient."""
    with server.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT patient_id, id FROM referrals WHERE care_group_id = 'cg-zuidoost'"
                " AND 'gp-de-linde' IN (referrer_org_id, target_org_id)"
            )
        ).all()
    return {f"patients/{p}/referrals/{i}": p for p, i in rows}


def test_the_kis_as_itself_lists_and_follows_what_identity_decides_one_entry_each(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    """Referral no longer refuses the KIS's own token (ROLE_NOT_PERMITTED before anything
    was asked): it asks identity about each patient of its organisation's referrals it
    lists and each referral it follows, as for a person, and shows what identity permits;
    identity logs every question with the KIS as user and access point."""
    offer = listed_offer(stub, tokens, "kis-self")
    mine = refer(stub, tokens, "p-0002", offer)
    ours = _ours(referral_server)
    assert mine.name in ours
    kis = bearer(tokens.client("carenet-kis"))

    before = _last_id(referral_server)
    listed = stub.ListReferrals(
        rpc.ListReferralsRequest(parent="patients/-", page_size=200), metadata=kis, timeout=10
    )
    assert {r.name for r in listed.referrals} <= set(ours)
    asked = _log(referral_server, before)
    assert sorted(str(row[3]) for row in asked) == sorted(set(ours.values()))
    assert {row[:3] for row in asked} == {(KIS_ACCOUNT, KIS_ACCOUNT, "carenet-kis")}
    permitted = {row[3] for row in asked if row[5] == "permit"}
    assert {r.name for r in listed.referrals} == {n for n, p in ours.items() if p in permitted}

    before = _last_id(referral_server)
    followed = list(
        stub.WatchReferralEvents(
            rpc.WatchReferralEventsRequest(after_cursor=0, no_follow=True), metadata=kis, timeout=10
        )
    )
    assert {e.referral for e in followed} <= set(ours)
    asked = _log(referral_server, before)
    assert len(asked) == len(ours)  # one question per referral of its organisation
    assert {row[:3] for row in asked} == {(KIS_ACCOUNT, KIS_ACCOUNT, "carenet-kis")}


def test_the_kis_as_itself_still_cannot_read_or_change_one_referral(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    offer = listed_offer(stub, tokens, "kis-self-get")
    mine = refer(stub, tokens, "p-0001", offer)
    kis = bearer(tokens.client("carenet-kis"))
    read = fails(
        lambda: stub.GetReferral(rpc.GetReferralRequest(name=mine.name), metadata=kis, timeout=10)
    )
    change = fails(
        lambda: stub.TransitionReferral(
            rpc.TransitionReferralRequest(
                name=mine.name, status=pb.REFERRAL_STATUS_CANCELLED, reason="x"
            ),
            metadata=kis,
            timeout=10,
        )
    )
    assert read.code == change.code == grpc.StatusCode.PERMISSION_DENIED

"""A KIS acting as itself (issue 14): the client-credentials token of ``carenet-kis`` (realm
role ``delegate``, organisation gp-de-linde, naming no person) lists and follows the
referrals its organisation made or receives, and nothing of another organisation. Every
read is decided by the real identity server (its rule for an organisation's system acting
as itself) and logged there, one entry per referral listed across patients or followed
(per patient for one patient's list), with the KIS as user, responsible user and access
point; it reads or changes no single referral as itself (refused by its role before
identity is asked, so nothing is logged for a read that cannot happen)."""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy import text

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.fixtures import IdentityService, Tokens, bearer, valid_bsn

from ..conftest import ReferralServer
from .helpers import fails, listed_offer, refer

KIS_ACCOUNT = "f593cd7d-cc62-5ac5-898e-e9d97e2c2ae8"  # service-account-carenet-kis
PRACTICE = "organisations/gp-de-linde"


def _log(server: ReferralServer, after: int) -> list[dict[str, Any]]:
    with server.identity_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT user_id, responsible_user, access_point, roles, organisation_id,"
                " patient_id, data_category, action, decision, basis, reason"
                " FROM access_log WHERE id > :after ORDER BY id"
            ),
            {"after": after},
        ).mappings()
        return [dict(r) for r in rows]


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


def _events_of_ours(server: ReferralServer) -> int:
    """The events of gp-de-linde's referrals (made or received) in cg-zuidoost."""
    with server.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM outbox WHERE care_group_id = 'cg-zuidoost'"
                    " AND 'gp-de-linde' IN (referrer_org_id, target_org_id)"
                )
            ).scalar_one()
        )


def _other_practices_patient(identity_service: IdentityService, tokens: Tokens, n: int) -> str:
    """A patient registered by dr.devries through identity's API: gp-het-anker coordinates,
    gp-de-linde has no relationship (a patient of its own, so that referrals made to them
    here change nothing another test reads)."""
    patient = f"p-kis-other-{n}"
    identity_service.register_patient(tokens.user("dr.devries"), patient, valid_bsn(n, 733_000_000))
    return patient


def _all_pages(stub: rpc_grpc.ReferralServiceStub, parent: str, metadata: Any) -> list[pb.Referral]:
    found: list[pb.Referral] = []
    token = ""
    while True:
        page = stub.ListReferrals(
            rpc.ListReferralsRequest(parent=parent, page_size=100, page_token=token),
            metadata=metadata,
            timeout=10,
        )
        found.extend(page.referrals)
        token = page.next_page_token
        if not token:
            return found


def _as_the_kis(rows: list[dict[str, Any]]) -> None:
    """Every entry names the KIS as user, responsible user and access point, with its own
    role and organisation, about referral data it read."""
    assert rows
    for row in rows:
        assert (row["user_id"], row["responsible_user"], row["access_point"]) == (
            KIS_ACCOUNT,
            KIS_ACCOUNT,
            "carenet-kis",
        )
        assert (row["roles"], row["organisation_id"]) == ("delegate", "gp-de-linde")
        assert (row["data_category"], row["action"]) == ("referral", "read")
        if row["decision"] == "permit":
            assert row["basis"] in ("care-relationship", "referral-target")


def test_the_kis_as_itself_lists_its_practices_referrals_and_no_other_organisations(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    referral_server: ReferralServer,
    identity_service: IdentityService,
) -> None:
    """ListReferrals across patients (``patients/-``) and for one patient: gp-de-linde's
    referral is shown (identity permits the KIS on the practice's care relationship), a
    referral gp-het-anker made is not; across patients each referral of the practice is one
    log entry (asked with its context, as the event stream asks), for one patient the
    patient is."""
    other = _other_practices_patient(identity_service, tokens, 1)
    offer = listed_offer(stub, tokens, "kis-self")
    mine = refer(stub, tokens, "p-0002", offer)
    theirs = refer(stub, tokens, other, offer, user="dr.devries")
    assert theirs.referrer_organisation == "organisations/gp-het-anker"
    ours = _ours(referral_server)
    assert mine.name in ours and theirs.name not in ours
    kis = bearer(tokens.client("carenet-kis"))

    before = _last_id(referral_server)
    listed = _all_pages(stub, "patients/-", kis)
    names = {r.name for r in listed}
    assert mine.name in names
    assert theirs.name not in names
    assert names <= set(ours)
    assert all(PRACTICE in (r.referrer_organisation, r.target_organisation) for r in listed)
    asked = _log(referral_server, before)
    _as_the_kis(asked)
    # one question per referral of the practice, and what identity permitted is exactly
    # what is shown
    assert len(asked) == len(ours)
    assert {row["patient_id"] for row in asked} == set(ours.values())
    permitted = {row["patient_id"] for row in asked if row["decision"] == "permit"}
    assert "p-0002" in permitted
    assert names == {n for n, p in ours.items() if p in permitted}

    before = _last_id(referral_server)
    one = _all_pages(stub, "patients/p-0002", kis)
    assert mine.name in {r.name for r in one}
    assert all(PRACTICE in (r.referrer_organisation, r.target_organisation) for r in one)
    (entry,) = _log(referral_server, before)
    _as_the_kis([entry])
    assert (entry["patient_id"], entry["decision"], entry["basis"]) == (
        "p-0002",
        "permit",
        "care-relationship",
    )

    before = _last_id(referral_server)
    refused = fails(lambda: _all_pages(stub, f"patients/{other}", kis))
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NO_CARE_RELATIONSHIP",
    )
    (entry,) = _log(referral_server, before)
    _as_the_kis([entry])
    assert (entry["patient_id"], entry["decision"]) == (other, "deny")


def test_the_kis_as_itself_follows_its_practices_referral_events_and_no_others(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    referral_server: ReferralServer,
    identity_service: IdentityService,
) -> None:
    """WatchReferralEvents: the events of gp-de-linde's referral stream to the KIS, those of
    gp-het-anker's never; each event of its organisation's referrals is decided as it is
    delivered, one log entry per event (identity decides with the referral's context and
    record holder), and what identity permits is what is delivered."""
    other = _other_practices_patient(identity_service, tokens, 2)
    offer = listed_offer(stub, tokens, "kis-watch")
    mine = refer(stub, tokens, "p-0001", offer)
    theirs = refer(stub, tokens, other, offer, user="dr.devries")
    ours = _ours(referral_server)
    kis = bearer(tokens.client("carenet-kis"))

    before = _last_id(referral_server)
    followed = list(
        stub.WatchReferralEvents(
            rpc.WatchReferralEventsRequest(after_cursor=0, no_follow=True), metadata=kis, timeout=30
        )
    )
    referrals = {e.referral for e in followed}
    assert mine.name in referrals
    assert theirs.name not in referrals
    assert referrals <= set(ours)
    assert all(PRACTICE in (e.referrer_organisation, e.target_organisation) for e in followed)
    created = [e for e in followed if e.referral == mine.name]
    assert created and created[0].type == pb.REFERRAL_EVENT_TYPE_CREATED
    asked = _log(referral_server, before)
    _as_the_kis(asked)
    assert len(asked) == _events_of_ours(referral_server)  # one question per event
    assert sum(row["decision"] == "permit" for row in asked) == len(followed)
    assert all(row["decision"] == "permit" for row in asked if row["patient_id"] == "p-0001")


def test_the_kis_as_itself_still_cannot_read_or_change_one_referral(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    offer = listed_offer(stub, tokens, "kis-self-get")
    mine = refer(stub, tokens, "p-0001", offer)
    kis = bearer(tokens.client("carenet-kis"))
    before = _last_id(referral_server)
    read = fails(
        lambda: stub.GetReferral(rpc.GetReferralRequest(name=mine.name), metadata=kis, timeout=10)
    )
    assert read.reason == "ROLE_NOT_PERMITTED"
    assert _log(referral_server, before) == []  # refused before identity is asked
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
    assert change.reason == "ROLE_NOT_PERMITTED"

"""Curation with a reason (issue 13): the care group's admin rejects a proposed offer with a
reason (RetireOffer's ``reason``), and the owner reads it on the offer (``state_reason``).
Without a reason, with one too long or holding control characters, the rejection is
INVALID_ARGUMENT naming ``reason`` and the offer stays proposed."""

from __future__ import annotations

import itertools

import grpc

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens

from .helpers import as_user, fails

OWNER = "coach.degroot"
ADMIN = "admin.zuidoost"
_ids = itertools.count(1)


def _proposed(stub: rpc_grpc.ReferralServiceStub, tokens: Tokens) -> pb.Offer:
    md = as_user(tokens, OWNER)
    offer = stub.CreateOffer(
        rpc.CreateOfferRequest(
            offer=pb.Offer(display_name="Beweegmaatje", category=pb.OFFER_CATEGORY_GLI),
            offer_id=f"reject-{next(_ids)}",
        ),
        metadata=md,
        timeout=10,
    )
    proposed: pb.Offer = stub.ProposeOffer(
        rpc.ProposeOfferRequest(name=offer.name), metadata=md, timeout=10
    )
    return proposed


def _retire(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, name: str, reason: str, user: str = ADMIN
) -> pb.Offer:
    retired: pb.Offer = stub.RetireOffer(
        rpc.RetireOfferRequest(name=name, reason=reason), metadata=as_user(tokens, user), timeout=10
    )
    return retired


def test_the_admin_rejects_a_proposed_offer_with_a_reason_the_owner_reads(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    offer = _proposed(stub, tokens)
    assert offer.state_reason == ""
    reason = "Geen erkenning van de beroepsvereniging.\nVraag die eerst aan."
    retired = _retire(stub, tokens, offer.name, f"  {reason} ")
    assert (retired.state, retired.state_reason) == (pb.OFFER_STATE_RETIRED, reason)
    owner = as_user(tokens, OWNER)
    seen = stub.GetOffer(rpc.GetOfferRequest(name=offer.name), metadata=owner, timeout=10)
    assert (seen.state, seen.state_reason) == (pb.OFFER_STATE_RETIRED, reason)
    mine = stub.ListOffers(
        rpc.ListOffersRequest(owner_organisation=offer.owner_organisation, page_size=200),
        metadata=owner,
        timeout=10,
    )
    assert [o.state_reason for o in mine.offers if o.name == offer.name] == [reason]


def test_a_rejection_without_a_usable_reason_names_the_field_and_changes_nothing(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    offer = _proposed(stub, tokens)
    for reason, code in (
        ("", "REASON_REQUIRED"),
        ("   \n ", "REASON_REQUIRED"),
        ("x" * 1001, "TEXT_TOO_LONG"),
        ("niet\x07goed", "INVALID_CHARACTERS"),
        ("escape \x1b[31m", "INVALID_CHARACTERS"),
    ):
        refused = fails(lambda reason=reason: _retire(stub, tokens, offer.name, reason))  # type: ignore[misc]
        assert (refused.code, refused.reason, refused.field_violations) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            code,
            ("reason",),
        ), reason
    still = stub.GetOffer(
        rpc.GetOfferRequest(name=offer.name), metadata=as_user(tokens, OWNER), timeout=10
    )
    assert (still.state, still.state_reason, still.etag) == (
        pb.OFFER_STATE_PROPOSED,
        "",
        offer.etag,
    )
    # 1,000 characters is the limit, not over it
    assert _retire(stub, tokens, offer.name, "y" * 1000).state_reason == "y" * 1000


def test_the_owner_withdraws_without_a_reason_and_a_listed_offer_is_retired_with_one(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens
) -> None:
    withdrawn = _retire(stub, tokens, _proposed(stub, tokens).name, "", user=OWNER)
    assert (withdrawn.state, withdrawn.state_reason) == (pb.OFFER_STATE_RETIRED, "")
    offer = _proposed(stub, tokens)
    listed = stub.PublishOffer(
        rpc.PublishOfferRequest(name=offer.name), metadata=as_user(tokens, ADMIN), timeout=10
    )
    assert listed.state_reason == ""
    assert _retire(stub, tokens, offer.name, "").state_reason == ""
    refused = fails(lambda: _retire(stub, tokens, offer.name, "\x00"))
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT

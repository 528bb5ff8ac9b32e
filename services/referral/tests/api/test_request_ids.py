"""request_id on every create (AIP-155, issue 11 point 10): a repeat of the same request
returns the first resource and writes nothing; the same id with another request is
INVALID_ARGUMENT REQUEST_ID_REUSED and never returns the first resource."""

from __future__ import annotations

import grpc

from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens

from ..conftest import ReferralServer
from .helpers import as_user, count, fails, listed_offer, refer


def _referrals_of(server: ReferralServer, patient: str, offer: str) -> int:
    return count(
        server.engine,
        "SELECT count(*) FROM referrals WHERE patient_id = :p AND offer_id = :o",
        p=patient,
        o=offer.removeprefix("offers/"),
    )


def test_create_referral_replays_the_same_request_and_refuses_the_id_for_another(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    first_offer = listed_offer(stub, tokens, "rid-a")
    other_offer = listed_offer(stub, tokens, "rid-b")
    first = refer(stub, tokens, "p-0002", first_offer, request_id="R-referral")
    events = "SELECT count(*) FROM outbox WHERE referral_id = :r"
    again = refer(stub, tokens, "p-0002", first_offer, request_id="R-referral")
    assert again == first
    assert _referrals_of(referral_server, "p-0002", first_offer) == 1
    assert count(referral_server.engine, events, r=first.name.rsplit("/", 1)[-1]) == 1

    reused = fails(lambda: refer(stub, tokens, "p-0001", other_offer, request_id="R-referral"))
    assert (reused.code, reused.reason, reused.field_violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
        ("request_id",),
    )
    assert first.name not in reused.message and "p-0002" not in reused.message
    assert _referrals_of(referral_server, "p-0001", other_offer) == 0
    # The same patient and offer with another reason is another request too.
    changed = fails(
        lambda: refer(
            stub, tokens, "p-0002", first_offer, request_id="R-referral", reason="Other reason"
        )
    )
    assert changed.reason == "REQUEST_ID_REUSED"
    # The first request still replays.
    assert refer(stub, tokens, "p-0002", first_offer, request_id="R-referral") == first


def test_create_offer_replays_the_same_request_and_refuses_the_id_for_another(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, referral_server: ReferralServer
) -> None:
    owner = as_user(tokens, "coach.degroot")

    def create(display_name: str) -> pb.Offer:
        return stub.CreateOffer(
            rpc.CreateOfferRequest(
                offer=pb.Offer(display_name=display_name, category=pb.OFFER_CATEGORY_NUTRITION),
                request_id="R-offer",
            ),
            metadata=owner,
            timeout=10,
        )

    offers = "SELECT count(*) FROM offers WHERE display_name = :n"
    first = create("Kookcursus")
    assert create("Kookcursus").name == first.name
    assert count(referral_server.engine, offers, n="Kookcursus") == 1

    reused = fails(lambda: create("Beweegcursus"))
    assert (reused.code, reused.reason, reused.field_violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
        ("request_id",),
    )
    assert first.name not in reused.message
    assert count(referral_server.engine, offers, n="Beweegcursus") == 0

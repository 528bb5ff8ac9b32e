"""A create tells nothing about another organisation's open referral: dr.devries
(gp-het-anker) has a TREATING care relationship with a patient of gp-de-linde and no consent
for the practice's referral data, so its own create is permitted but it may not read the
practice's referral. Whether or not the practice already referred the patient to an offer,
dr.devries' create of a referral to that offer answers the same: a new referral of its own.
A duplicate is only ever its own organisation's open referral. The offer's provider receives
both referrals, each with its referrer."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from sqlalchemy import text

from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from carenet.referral.v1 import referral_pb2 as pb
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.fixtures import IdentityService, Tokens, valid_bsn
from testkit.rpc import status_of

from ..conftest import ReferralServer
from .helpers import as_user, count, fails, listed_offer, refer

PATIENT = "rf-dup-per-referrer"
PRACTICE = "organisations/gp-de-linde"
OTHER = "organisations/gp-het-anker"


@pytest.fixture(scope="module")
def patient(identity_service: IdentityService, tokens: Tokens) -> str:
    """A patient of gp-de-linde (coordinating) with whom gp-het-anker has a TREATING
    relationship and no consent."""
    identity_service.register_patient(
        tokens.user("dr.jansen"), PATIENT, valid_bsn(11, base=620_000_000)
    )
    with grpc.insecure_channel(identity_service.target) as channel:
        id_grpc.IdentityServiceStub(channel).CreateCareRelationship(
            id_rpc.CreateCareRelationshipRequest(
                parent=f"patients/{PATIENT}",
                care_relationship=id_pb.CareRelationship(
                    organisation=OTHER, kind=id_pb.CARE_RELATIONSHIP_KIND_TREATING
                ),
            ),
            metadata=as_user(tokens, "dr.devries"),
            timeout=10,
        )
    return PATIENT


@pytest.fixture(scope="module")
def new_offer(stub: rpc_grpc.ReferralServiceStub, tokens: Tokens) -> Iterator[Callable[[str], str]]:
    """A new listed offer per test, retired after the module (so that the menu card other
    tests read, e.g. FindOffers' first page, is as they left it)."""
    made: list[str] = []

    def make(prefix: str) -> str:
        made.append(listed_offer(stub, tokens, prefix))
        return made[-1]

    yield make
    for name in made:
        stub.RetireOffer(
            rpc.RetireOfferRequest(name=name),
            metadata=as_user(tokens, "coach.degroot"),
            timeout=10,
        )


def _log_count(server: ReferralServer, patient: str) -> int:
    with server.identity_engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM access_log WHERE patient_id = :p"), {"p": patient}
            ).scalar_one()
        )


def _referrals(server: ReferralServer, patient: str, offer: str) -> int:
    return count(
        server.engine,
        "SELECT count(*) FROM referrals WHERE patient_id = :p AND offer_id = :o",
        p=patient,
        o=offer.rsplit("/", 1)[-1],
    )


def test_another_organisations_open_referral_changes_nothing_in_the_answer(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    patient: str,
    referral_server: ReferralServer,
    new_offer: Callable[[str], str],
) -> None:
    taken = new_offer("dupref-taken")
    free = new_offer("dupref-free")
    practice = refer(stub, tokens, patient, taken)
    devries = as_user(tokens, "dr.devries")

    # The practice's referral is not dr.devries' to read: to him it does not exist.
    read = status_of(
        lambda: stub.GetReferral(
            rpc.GetReferralRequest(name=practice.name), metadata=devries, timeout=10
        )
    )
    assert read.code == grpc.StatusCode.NOT_FOUND.value[0]

    log_before = _log_count(referral_server, patient)
    beside = refer(stub, tokens, patient, taken, user="dr.devries")
    assert _log_count(referral_server, patient) - log_before == 1  # the create's own question
    alone = refer(stub, tokens, patient, free, user="dr.devries")

    # The same answer with and without the practice's open referral: a new referral of
    # gp-het-anker, in the same state, that says nothing about the practice's.
    for made in (beside, alone):
        assert made.referrer_organisation == OTHER
        assert made.status == practice.status
        assert practice.name.rsplit("/", 1)[-1] not in str(made)
    assert beside.name != practice.name
    assert _referrals(referral_server, patient, taken) == 2


def test_a_duplicate_is_only_the_callers_own_organisations_referral(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    patient: str,
    referral_server: ReferralServer,
    new_offer: Callable[[str], str],
) -> None:
    offer = new_offer("dupref-own")
    practice = refer(stub, tokens, patient, offer)
    own = refer(stub, tokens, patient, offer, user="dr.devries")

    again = fails(lambda: refer(stub, tokens, patient, offer, user="dr.devries"))
    assert (again.code, again.reason) == (grpc.StatusCode.ALREADY_EXISTS, "DUPLICATE_OPEN_REFERRAL")
    whole = str(status_of(lambda: refer(stub, tokens, patient, offer, user="dr.devries")))
    assert own.name in whole
    assert practice.name.rsplit("/", 1)[-1] not in whole

    # The practice is told of its own open referral, not of gp-het-anker's.
    theirs = fails(lambda: refer(stub, tokens, patient, offer, user="poh.bakker"))
    assert (theirs.code, theirs.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "DUPLICATE_OPEN_REFERRAL",
    )
    whole = str(status_of(lambda: refer(stub, tokens, patient, offer, user="poh.bakker")))
    assert practice.name in whole
    assert own.name.rsplit("/", 1)[-1] not in whole
    assert _referrals(referral_server, patient, offer) == 2


def test_a_closed_referral_of_the_organisation_lets_it_refer_again(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    patient: str,
    new_offer: Callable[[str], str],
) -> None:
    offer = new_offer("dupref-closed")
    refer(stub, tokens, patient, offer)
    first = refer(stub, tokens, patient, offer, user="dr.devries")
    stub.TransitionReferral(
        rpc.TransitionReferralRequest(
            name=first.name, status=pb.REFERRAL_STATUS_CANCELLED, reason="patient declined"
        ),
        metadata=as_user(tokens, "dr.devries"),
        timeout=10,
    )
    second = refer(stub, tokens, patient, offer, user="dr.devries")
    assert second.name != first.name
    assert second.referrer_organisation == OTHER


def test_a_replayed_request_id_returns_the_callers_own_referral(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    patient: str,
    referral_server: ReferralServer,
    new_offer: Callable[[str], str],
) -> None:
    offer = new_offer("dupref-replay")
    refer(stub, tokens, patient, offer, request_id="dupref-replay-1")
    first = refer(stub, tokens, patient, offer, user="dr.devries", request_id="dupref-replay-1")
    log_before = _log_count(referral_server, patient)
    replay = refer(stub, tokens, patient, offer, user="dr.devries", request_id="dupref-replay-1")
    assert replay.name == first.name
    assert replay.referrer_organisation == OTHER
    assert _log_count(referral_server, patient) - log_before == 1
    assert _referrals(referral_server, patient, offer) == 2


def test_the_provider_receives_both_referrals_each_with_its_referrer(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    patient: str,
    new_offer: Callable[[str], str],
) -> None:
    offer = new_offer("dupref-target")
    practice = refer(stub, tokens, patient, offer)
    other = refer(stub, tokens, patient, offer, user="dr.devries")

    listed = stub.ListReferrals(
        rpc.ListReferralsRequest(parent=f"patients/{patient}", page_size=50),
        metadata=as_user(tokens, "coach.degroot"),
        timeout=10,
    )
    received = {r.name: r.referrer_organisation for r in listed.referrals if r.offer == offer}
    assert received == {practice.name: PRACTICE, other.name: OTHER}
    for name, referrer in received.items():
        got = stub.GetReferral(
            rpc.GetReferralRequest(name=name), metadata=as_user(tokens, "coach.degroot"), timeout=10
        )
        assert got.referrer_organisation == referrer

"""A create names an open duplicate only to a caller who may read it: dr.devries
(gp-het-anker) has a TREATING care relationship with a patient of gp-de-linde but no consent
for the patient's referral data. The practice's open referral for an offer is no duplicate
of gp-het-anker's create (one open referral per referring organisation): dr.devries gets a
referral of its own, with no name of the practice's, which it still may not read. The
practice, which may read its own, is told its name."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import Engine

from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from carenet.referral.v1 import referral_service_pb2 as rpc
from carenet.referral.v1 import referral_service_pb2_grpc as rpc_grpc
from testkit.fixtures import IdentityService, Tokens, valid_bsn
from testkit.rpc import status_of

from .helpers import as_user, count, listed_offer, refer

PATIENT = "rf-dup-visible"


@pytest.fixture(scope="module")
def identity_stub(identity_service: IdentityService) -> Iterator[id_grpc.IdentityServiceStub]:
    with grpc.insecure_channel(identity_service.target) as channel:
        yield id_grpc.IdentityServiceStub(channel)


@pytest.fixture(scope="module")
def patient(
    identity_service: IdentityService, identity_stub: id_grpc.IdentityServiceStub, tokens: Tokens
) -> str:
    """A patient of gp-de-linde (coordinating, through identity's own registration) with whom
    gp-het-anker has a TREATING relationship and no consent."""
    identity_service.register_patient(
        tokens.user("dr.jansen"), PATIENT, valid_bsn(7, base=610_000_000)
    )
    identity_stub.CreateCareRelationship(
        id_rpc.CreateCareRelationshipRequest(
            parent=f"patients/{PATIENT}",
            care_relationship=id_pb.CareRelationship(
                organisation="organisations/gp-het-anker",
                kind=id_pb.CARE_RELATIONSHIP_KIND_TREATING,
            ),
        ),
        metadata=as_user(tokens, "dr.devries"),
        timeout=10,
    )
    return PATIENT


def test_a_duplicate_is_not_named_to_a_caller_who_may_not_read_it(
    stub: rpc_grpc.ReferralServiceStub,
    tokens: Tokens,
    patient: str,
    referral_engine: Engine,
) -> None:
    offer = listed_offer(stub, tokens, "dupvis")
    existing = refer(stub, tokens, patient, offer)
    devries = as_user(tokens, "dr.devries")

    read = status_of(
        lambda: stub.GetReferral(
            rpc.GetReferralRequest(name=existing.name), metadata=devries, timeout=10
        )
    )
    created = refer(stub, tokens, patient, offer, user="dr.devries")

    assert read.code == grpc.StatusCode.NOT_FOUND.value[0]  # not his: as if there were none
    assert created.referrer_organisation == "organisations/gp-het-anker"
    assert existing.name.rsplit("/", 1)[-1] not in str(created)
    assert (
        count(referral_engine, "SELECT count(*) FROM referrals WHERE patient_id = :p", p=patient)
        == 2
    )


def test_the_practice_that_may_read_the_duplicate_is_told_its_name(
    stub: rpc_grpc.ReferralServiceStub, tokens: Tokens, patient: str
) -> None:
    offer = listed_offer(stub, tokens, "dupvis-own")
    existing = refer(stub, tokens, patient, offer)
    with pytest.raises(grpc.RpcError) as caught:
        refer(stub, tokens, patient, offer, user="poh.bakker")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert existing.name in str(caught.value.details())

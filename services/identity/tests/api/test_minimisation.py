"""Each role sees the least it needs (identity.minimisation; the README's table): a lifestyle
provider learns of its own relationship, not of the patient's GP or hospital."""

from __future__ import annotations

import pytest

from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer

Stub = rpc_grpc.IdentityServiceStub

# p-0001's relationships in the demo region.
EVERYONE = {"gp-de-linde", "hosp-catharina", "gli-beweegfit"}


def _organisations(stub: Stub, patient: str, metadata: object) -> set[str]:
    reply = stub.ListCareRelationships(
        rpc.ListCareRelationshipsRequest(parent=patient),
        metadata=metadata,  # type: ignore[arg-type]
        timeout=5,
    )
    return {r.organisation.removeprefix("organisations/") for r in reply.care_relationships}


def test_a_lifestyle_provider_sees_only_its_own_relationship(stub: Stub, tokens: Tokens) -> None:
    seen = _organisations(stub, "patients/p-0001", bearer(tokens.user("coach.degroot")))
    assert seen == {"gli-beweegfit"}


def test_a_municipality_officer_sees_only_its_own_relationship(stub: Stub, tokens: Tokens) -> None:
    seen = _organisations(stub, "patients/p-0002", bearer(tokens.user("ambtenaar.mulder")))
    assert seen == {"gm-eindhoven"}


def test_a_hospital_specialist_sees_its_own_and_the_coordinating_practice(
    stub: Stub, tokens: Tokens
) -> None:
    seen = _organisations(stub, "patients/p-0001", bearer(tokens.user("dr.smit")))
    assert seen == {"hosp-catharina", "gp-de-linde"}


@pytest.mark.parametrize("reader", ["dr.jansen", "poh.bakker", "pat.dewit"])
def test_the_coordinating_practice_and_the_patient_see_every_relationship(
    stub: Stub, tokens: Tokens, reader: str
) -> None:
    token = tokens.patient(reader) if reader.startswith("pat.") else tokens.user(reader)
    assert _organisations(stub, "patients/p-0001", bearer(token)) == EVERYONE


def test_get_patient_gives_a_provider_whom_it_is_for_and_a_clinician_the_whole_registration(
    stub: Stub, tokens: Tokens
) -> None:
    request = rpc.GetPatientRequest(name="patients/p-0001")
    provider = stub.GetPatient(request, metadata=bearer(tokens.user("coach.degroot")), timeout=5)
    assert provider.name == "patients/p-0001"
    assert provider.care_group == "organisations/cg-zuidoost"
    assert not provider.HasField("create_time")
    assert not provider.HasField("update_time")
    clinician = stub.GetPatient(request, metadata=bearer(tokens.user("dr.smit")), timeout=5)
    assert clinician.HasField("create_time")
    assert clinician.HasField("update_time")
    # The resource has no field that could carry a BSN, for anyone.
    assert set(clinician.DESCRIPTOR.fields_by_name) == {
        "name",
        "care_group",
        "create_time",
        "update_time",
    }

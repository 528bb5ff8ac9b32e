"""Who records a consent and who names a patient's coordinating practice (issue 11, review
points 1 and 2): a consent only by the patient or the coordinating practice, never one that
opens data to the recorder's own organisation; one coordinating GP practice per patient,
named by the care group's admin."""

from __future__ import annotations

import grpc

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer

from .calls import fails
from .test_measurements_record_holder import _new_bsn

Stub = rpc_grpc.IdentityServiceStub
HOSPITAL = "organisations/hosp-catharina"
PRACTICE = "organisations/gp-de-linde"
OTHER_PRACTICE = "organisations/gp-het-anker"


def _new_patient(stub: Stub, tokens: Tokens) -> str:
    """A patient registered by dr.jansen: gp-de-linde coordinates."""
    gp = bearer(tokens.user("dr.jansen"))
    return stub.RegisterPatient(rpc.RegisterPatientRequest(bsn=_new_bsn()), metadata=gp).name


def _relationship(
    organisation: str, kind: pb.CareRelationshipKind.ValueType
) -> pb.CareRelationship:
    return pb.CareRelationship(organisation=organisation, kind=kind)


def _consent(
    patient: str, category: pb.DataCategory.ValueType, requester: pb.OrganisationSelector
) -> rpc.CreateConsentRequest:
    return rpc.CreateConsentRequest(
        parent=patient,
        consent=pb.Consent(
            record_holder=pb.OrganisationSelector(category=pb.ORGANISATION_TYPE_GP_PRACTICE),
            data_category=category,
            requester=requester,
        ),
    )


def _ask(
    stub: Stub, tokens: Tokens, patient: str, category: pb.DataCategory.ValueType
) -> rpc.AuthorizeResponse:
    return stub.Authorize(
        rpc.AuthorizeRequest(
            patient=patient,
            data_category=category,
            action=pb.ACTION_READ,
            record_holder=PRACTICE,
        ),
        metadata=bearer(tokens.user("dr.smit")),
        timeout=5,
    )


def test_a_hospital_clinician_cannot_record_a_consent_that_opens_the_gps_data_to_it(
    stub: Stub, tokens: Tokens
) -> None:
    """The review's sequence: dr.smit asserts a relationship for the hospital (allowed),
    records a consent for it (was OK, recorded_by dr.smit) and then read the GP's data."""
    patient = _new_patient(stub, tokens)
    smit = bearer(tokens.user("dr.smit"))
    stub.CreateCareRelationship(
        rpc.CreateCareRelationshipRequest(
            parent=patient,
            care_relationship=_relationship(HOSPITAL, pb.CARE_RELATIONSHIP_KIND_TREATING),
        ),
        metadata=smit,
        timeout=5,
    )
    for category in (
        pb.DATA_CATEGORY_CARE_PLAN,
        pb.DATA_CATEGORY_MEASUREMENTS,
        pb.DATA_CATEGORY_REFERRAL,
    ):
        request = _consent(patient, category, pb.OrganisationSelector(organisation=HOSPITAL))
        fail = fails(stub.CreateConsent, request, smit)
        assert (fail.code, fail.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "CONSENT_RECORDER_NOT_ALLOWED",
        )
        # Naming the hospital's type instead of the hospital is refused alike.
        by_type = _consent(
            patient, category, pb.OrganisationSelector(category=pb.ORGANISATION_TYPE_HOSPITAL)
        )
        assert fails(stub.CreateConsent, by_type, smit).reason == "CONSENT_RECORDER_NOT_ALLOWED"
    listed = stub.ListConsents(rpc.ListConsentsRequest(parent=patient), metadata=smit, timeout=5)
    assert list(listed.consents) == []
    for category in (pb.DATA_CATEGORY_CARE_PLAN, pb.DATA_CATEGORY_MEASUREMENTS):
        reply = _ask(stub, tokens, patient, category)
        assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "NO_CONSENT")


def test_the_coordinating_practice_records_and_withdraws_consent_for_the_patient(
    stub: Stub, tokens: Tokens
) -> None:
    patient = _new_patient(stub, tokens)
    gp = bearer(tokens.user("dr.jansen"))
    smit = bearer(tokens.user("dr.smit"))
    stub.CreateCareRelationship(
        rpc.CreateCareRelationshipRequest(
            parent=patient,
            care_relationship=_relationship(HOSPITAL, pb.CARE_RELATIONSHIP_KIND_TREATING),
        ),
        metadata=smit,
        timeout=5,
    )
    consent = stub.CreateConsent(
        _consent(
            patient, pb.DATA_CATEGORY_CARE_PLAN, pb.OrganisationSelector(organisation=HOSPITAL)
        ),
        metadata=gp,
        timeout=5,
    )
    assert _ask(stub, tokens, patient, pb.DATA_CATEGORY_CARE_PLAN).decision == pb.DECISION_PERMIT
    # The coordinating practice never opens data to its own type (or itself) either.
    own = _consent(
        patient,
        pb.DATA_CATEGORY_CARE_PLAN,
        pb.OrganisationSelector(category=pb.ORGANISATION_TYPE_GP_PRACTICE),
    )
    assert fails(stub.CreateConsent, own, gp).reason == "CONSENT_RECORDER_NOT_ALLOWED"
    # The hospital may read the consent but not withdraw it; the coordinating practice may.
    withdraw = rpc.WithdrawConsentRequest(name=consent.name)
    fail = fails(stub.WithdrawConsent, withdraw, smit)
    assert (fail.code, fail.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "CONSENT_RECORDER_NOT_ALLOWED",
    )
    assert stub.WithdrawConsent(withdraw, metadata=gp, timeout=5).HasField("withdraw_time")
    assert _ask(stub, tokens, patient, pb.DATA_CATEGORY_CARE_PLAN).decision == pb.DECISION_DENY


def _coordinators(
    stub: Stub, tokens: Tokens, patient: str, reader: str = "dr.jansen"
) -> list[pb.CareRelationship]:
    page = stub.ListCareRelationships(
        rpc.ListCareRelationshipsRequest(parent=patient),
        metadata=bearer(tokens.user(reader)),
        timeout=5,
    )
    return [
        r
        for r in page.care_relationships
        if r.kind == pb.CARE_RELATIONSHIP_KIND_COORDINATING and not r.HasField("end_time")
    ]


def test_a_patient_has_one_coordinating_gp_practice_named_by_the_admin(
    stub: Stub, tokens: Tokens
) -> None:
    patient = _new_patient(stub, tokens)
    [current] = _coordinators(stub, tokens, patient)
    assert current.organisation == PRACTICE
    coordinate = rpc.CreateCareRelationshipRequest(
        parent=patient,
        care_relationship=_relationship(OTHER_PRACTICE, pb.CARE_RELATIONSHIP_KIND_COORDINATING),
    )
    # Another GP cannot make its practice the coordinator (it was OK: two coordinators).
    fail = fails(stub.CreateCareRelationship, coordinate, bearer(tokens.user("dr.devries")))
    assert (fail.code, fail.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_RELATIONSHIP_MANAGER",
    )
    # Nor can the admin add a second one: the answer names the existing one.
    admin = bearer(tokens.user("admin.zuidoost"))
    fail = fails(stub.CreateCareRelationship, coordinate, admin)
    assert (fail.code, fail.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "CARE_RELATIONSHIP_EXISTS",
    )
    assert fail.metadata == {"care_relationship": current.name}
    # Only a GP practice coordinates.
    hospital = rpc.CreateCareRelationshipRequest(
        parent=patient,
        care_relationship=_relationship(HOSPITAL, pb.CARE_RELATIONSHIP_KIND_COORDINATING),
    )
    fail = fails(stub.CreateCareRelationship, hospital, admin)
    assert (fail.code, fail.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "COORDINATOR_NOT_GP_PRACTICE",
    )
    # Changing coordinator: the current one ends it, then the admin names the new one.
    stub.EndCareRelationship(
        rpc.EndCareRelationshipRequest(name=current.name),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=5,
    )
    created = stub.CreateCareRelationship(coordinate, metadata=admin, timeout=5)
    assert [r.name for r in _coordinators(stub, tokens, patient, "dr.devries")] == [created.name]


def test_registering_a_coordinated_patient_again_from_another_practice_does_not_coordinate(
    stub: Stub, tokens: Tokens
) -> None:
    bsn = _new_bsn()
    register = rpc.RegisterPatientRequest(bsn=bsn)
    patient = stub.RegisterPatient(register, metadata=bearer(tokens.user("dr.jansen"))).name
    again = stub.RegisterPatient(register, metadata=bearer(tokens.user("dr.devries")))
    assert again.name == patient
    assert [r.organisation for r in _coordinators(stub, tokens, patient)] == [PRACTICE]

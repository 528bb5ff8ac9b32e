"""Measurements are held by the organisation that measured them: a service asking on behalf
of a subject must name that record holder, and identity never decides as if the subject held
them. Without the patient's consent nobody but the GP practice reads what it measured."""

from __future__ import annotations

import uuid

import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer

from .calls import subject_of_user

Stub = rpc_grpc.IdentityServiceStub

# (who asks, about whom): each has a care relationship, none a consent for measurements.
OUTSIDERS = [
    ("ambtenaar.mulder", "p-0002"),  # municipality, social support relationship
    ("dr.smit", "p-0001"),  # hospital, treating relationship
    ("coach.degroot", "p-0001"),  # lifestyle provider, referred relationship
]


def _ask(
    stub: Stub, tokens: Tokens, username: str, patient: str, holder: str, action: int
) -> rpc.AuthorizeResponse:
    """The question outcomes asks for its caller."""
    request = rpc.AuthorizeRequest(
        patient=f"patients/{patient}",
        data_category=pb.DATA_CATEGORY_MEASUREMENTS,
        action=action,  # type: ignore[arg-type]
        record_holder=f"organisations/{holder}" if holder else "",
        subject=subject_of_user(username),
        purpose="list-measurements",
    )
    reply: rpc.AuthorizeResponse = stub.Authorize(
        request, metadata=bearer(tokens.client("svc-outcomes")), timeout=5
    )
    return reply


@pytest.mark.parametrize(("username", "patient"), OUTSIDERS)
def test_an_organisation_without_consent_is_denied_the_gps_measurements(
    stub: Stub, tokens: Tokens, username: str, patient: str
) -> None:
    reply = _ask(stub, tokens, username, patient, "gp-de-linde", pb.ACTION_READ)
    assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "NO_CONSENT")


@pytest.mark.parametrize(("username", "patient"), OUTSIDERS)
def test_reading_measurements_without_naming_their_holder_is_denied_not_taken_as_own(
    stub: Stub, tokens: Tokens, username: str, patient: str
) -> None:
    """issue 11, point 1: the empty record holder made the caller its own record holder."""
    reply = _ask(stub, tokens, username, patient, "", pb.ACTION_READ)
    assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "RECORD_HOLDER_REQUIRED")
    assert reply.access_log_entry  # the question is logged like any other


def test_the_gp_practice_reads_what_it_measured_and_records_new_measurements_as_its_own(
    stub: Stub, tokens: Tokens
) -> None:
    read = _ask(stub, tokens, "dr.jansen", "p-0001", "gp-de-linde", pb.ACTION_READ)
    assert (read.decision, read.basis) == (pb.DECISION_PERMIT, pb.BASIS_CARE_RELATIONSHIP)
    # Creating: an empty record holder is the subject's own organisation.
    created = _ask(stub, tokens, "dr.jansen", "p-0001", "", pb.ACTION_CREATE)
    assert (created.decision, created.basis) == (pb.DECISION_PERMIT, pb.BASIS_CARE_RELATIONSHIP)


def test_the_patient_reads_their_own_measurements_whoever_holds_them(
    stub: Stub, tokens: Tokens
) -> None:
    reply = _ask(stub, tokens, "pat.dewit", "p-0001", "", pb.ACTION_READ)
    assert (reply.decision, reply.basis) == (pb.DECISION_PERMIT, pb.BASIS_SELF)


def test_a_consent_for_measurements_opens_them_to_the_organisation_it_names(
    stub: Stub, tokens: Tokens
) -> None:
    """The denial above is for want of consent: with one, the hospital reads them."""
    gp = bearer(tokens.user("dr.jansen"))
    patient = stub.RegisterPatient(
        rpc.RegisterPatientRequest(bsn=_new_bsn()), metadata=gp, timeout=5
    ).name.removeprefix("patients/")
    hospital = "organisations/hosp-catharina"
    stub.CreateCareRelationship(
        rpc.CreateCareRelationshipRequest(
            parent=f"patients/{patient}",
            care_relationship=pb.CareRelationship(
                organisation=hospital, kind=pb.CARE_RELATIONSHIP_KIND_TREATING
            ),
        ),
        metadata=gp,
        timeout=5,
    )
    ask = (stub, tokens, "dr.smit", patient, "gp-de-linde", pb.ACTION_READ)
    assert _ask(*ask).reason == "NO_CONSENT"
    stub.CreateConsent(
        rpc.CreateConsentRequest(
            parent=f"patients/{patient}",
            consent=pb.Consent(
                record_holder=pb.OrganisationSelector(organisation="organisations/gp-de-linde"),
                data_category=pb.DATA_CATEGORY_MEASUREMENTS,
                requester=pb.OrganisationSelector(organisation=hospital),
            ),
        ),
        metadata=gp,
        timeout=5,
    )
    reply = _ask(*ask)
    assert (reply.decision, reply.basis) == (
        pb.DECISION_PERMIT,
        pb.BASIS_CARE_RELATIONSHIP_AND_CONSENT,
    )


def _new_bsn() -> str:
    while True:
        head = f"{uuid.uuid4().int % 10**8:08d}"
        total = sum(w * int(d) for w, d in zip((9, 8, 7, 6, 5, 4, 3, 2), head, strict=True))
        if total % 11 < 10 and head[0] != "0":
            return head + str(total % 11)

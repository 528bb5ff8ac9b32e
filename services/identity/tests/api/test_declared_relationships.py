"""Who records a care relationship, and that the patient's access log says so (issue 11,
security review of the running platform): a treatment relationship is the care provider's
own claim, checked afterwards through the log. Only a clinical role of a care-providing
organisation (GP practice, hospital) declares its own organisation's relationship; a
lifestyle provider, sport coach or municipality officer declares nothing (it reaches a
patient through referrals); the care group's admin records any. Every recording is an entry
of the patient's log naming who, which organisation and how (self-declared, by the admin,
by the coordinating practice)."""

from __future__ import annotations

import grpc
import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.models import Action
from identity.use_cases import access_log
from identity.use_cases.deps import Deps
from servicekit.paging import PageRequest
from testkit.fakes import fake_principal
from testkit.fixtures import Tokens, bearer

from .calls import fails, user_id
from .test_measurements_record_holder import _new_bsn

Stub = rpc_grpc.IdentityServiceStub
HOSPITAL = "organisations/hosp-catharina"
PROVIDER = "organisations/gli-beweegfit"
MUNICIPALITY = "organisations/gm-eindhoven"


def _new_patient(stub: Stub, tokens: Tokens) -> tuple[str, str]:
    """A patient registered by dr.jansen (gp-de-linde coordinates), and its BSN."""
    bsn = _new_bsn()
    name = stub.RegisterPatient(
        rpc.RegisterPatientRequest(bsn=bsn), metadata=bearer(tokens.user("dr.jansen")), timeout=5
    ).name
    return name, bsn


def _create(parent: str, organisation: str) -> rpc.CreateCareRelationshipRequest:
    return rpc.CreateCareRelationshipRequest(
        parent=parent,
        care_relationship=pb.CareRelationship(
            organisation=organisation, kind=pb.CARE_RELATIONSHIP_KIND_TREATING
        ),
    )


def _latest(stub: Stub, tokens: Tokens, patient: str, count: int = 5) -> list[pb.AccessLogEntry]:
    """The patient's newest entries, as the care group's auditor reads them (the first is
    the auditor's own reading)."""
    return list(
        stub.ListAccessLogEntries(
            rpc.ListAccessLogEntriesRequest(
                patient=patient, order_by="event_time desc", page_size=count
            ),
            metadata=bearer(tokens.user("auditor.dekker")),
            timeout=5,
        ).access_log_entries
    )


def _recorded(entries: list[pb.AccessLogEntry], organisation: str) -> pb.AccessLogEntry:
    """The one entry among ``entries`` that records ``organisation``'s relationship."""
    (entry,) = [
        e
        for e in entries
        if e.purpose.startswith("care relationship recorded: ") and organisation in e.purpose
    ]
    return entry


@pytest.mark.parametrize(
    ("username", "organisation"),
    [
        ("coach.degroot", PROVIDER),
        ("coach.visser", MUNICIPALITY),
        ("ambtenaar.mulder", MUNICIPALITY),
    ],
)
def test_lifestyle_providers_and_municipalities_declare_no_relationship_of_their_own(
    stub: Stub, tokens: Tokens, username: str, organisation: str
) -> None:
    """Refused as for a patient they may not manage, and the refusal does not tell whether
    the patient exists; afterwards the caller still has no access."""
    patient, _ = _new_patient(stub, tokens)
    caller = bearer(tokens.user(username))
    refused = fails(stub.CreateCareRelationship, _create(patient, organisation), caller)
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_RELATIONSHIP_MANAGER",
    )
    nobody = fails(
        stub.CreateCareRelationship, _create("patients/p-nobody-9", organisation), caller
    )
    assert nobody == refused
    decision = stub.Authorize(
        rpc.AuthorizeRequest(
            patient=patient, data_category=pb.DATA_CATEGORY_PATIENT_RECORD, action=pb.ACTION_READ
        ),
        metadata=caller,
        timeout=5,
    )
    assert (decision.decision, decision.reason) == (pb.DECISION_DENY, "NO_CARE_RELATIONSHIP")
    entry = _latest(stub, tokens, patient, 3)[2]
    assert (entry.event, entry.decision, entry.reason) == (
        "CREATE_CARE_RELATIONSHIP",
        pb.DECISION_DENY,
        "NOT_RELATIONSHIP_MANAGER",
    )


def test_a_hospital_declares_its_own_relationship_and_the_log_names_it_self_declared(
    stub: Stub, tokens: Tokens
) -> None:
    patient, _ = _new_patient(stub, tokens)
    created = stub.CreateCareRelationship(
        _create(patient, HOSPITAL), metadata=bearer(tokens.user("dr.smit")), timeout=5
    )
    assert created.organisation == HOSPITAL
    entry = _recorded(_latest(stub, tokens, patient), HOSPITAL)
    assert (entry.event, entry.decision, entry.basis, entry.reason) == (
        "CREATE_CARE_RELATIONSHIP",
        pb.DECISION_PERMIT,
        pb.BASIS_CARE_RELATIONSHIP,
        "SELF_DECLARED",
    )
    assert (entry.user, entry.organisation) == (user_id("dr.smit"), HOSPITAL)
    assert entry.purpose == f"care relationship recorded: {HOSPITAL} (treating)"


def test_the_admin_records_any_and_the_coordinator_only_care_providers(
    stub: Stub, tokens: Tokens
) -> None:
    patient, _ = _new_patient(stub, tokens)
    coordinator = bearer(tokens.user("dr.jansen"))
    refused = fails(stub.CreateCareRelationship, _create(patient, PROVIDER), coordinator)
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_RELATIONSHIP_MANAGER",
    )
    stub.CreateCareRelationship(_create(patient, HOSPITAL), metadata=coordinator, timeout=5)
    admin = bearer(tokens.user("admin.zuidoost"))
    stub.CreateCareRelationship(_create(patient, PROVIDER), metadata=admin, timeout=5)
    entries = _latest(stub, tokens, patient)
    by_coordinator = _recorded(entries, HOSPITAL)
    assert (by_coordinator.reason, by_coordinator.user) == (
        "RECORDED_BY_COORDINATOR",
        user_id("dr.jansen"),
    )
    by_admin = _recorded(entries, PROVIDER)
    assert (by_admin.reason, by_admin.user, by_admin.organisation) == (
        "RECORDED_BY_ADMIN",
        user_id("admin.zuidoost"),
        "organisations/cg-zuidoost",
    )


def test_registering_a_known_patient_records_the_relationship_in_the_patients_log(
    stub: Stub, tokens: Tokens, deps: Deps
) -> None:
    """A hospital registering a BSN the care group knows gets the known patient and a
    relationship: written as what happened, and shown to the patient; registering again
    (the relationship is there) records nothing new."""
    patient, bsn = _new_patient(stub, tokens)
    specialist = bearer(tokens.user("dr.smit"))
    again = stub.RegisterPatient(rpc.RegisterPatientRequest(bsn=bsn), metadata=specialist)
    assert again.name == patient
    entry = _recorded(_latest(stub, tokens, patient), HOSPITAL)
    assert (entry.event, entry.reason, entry.user) == (
        "CREATE_CARE_RELATIONSHIP",
        "SELF_DECLARED",
        user_id("dr.smit"),
    )
    stub.RegisterPatient(rpc.RegisterPatientRequest(bsn=bsn), metadata=specialist)
    repeat = _latest(stub, tokens, patient, 2)[1]
    assert (repeat.event, repeat.reason, repeat.purpose) == ("REGISTER_PATIENT", "REGISTRATION", "")
    # The patient's own view (the Privacy page reads the same listing): newest first, the
    # recording among them.
    patient_id = patient.removeprefix("patients/")
    me = fake_principal(f"pat-{patient_id}", roles=["patient"], patient=patient_id)
    page = access_log.list_access_log(deps, me, patient_id, PageRequest(50), newest_first=True)
    seen = [(e.event, e.reason, e.organisation_id) for e in page.items]
    assert seen[0] == ("LIST_ACCESS_LOG", "LOG_READER", "")
    assert ("CREATE_CARE_RELATIONSHIP", "SELF_DECLARED", "hosp-catharina") in seen
    assert ("REGISTER_PATIENT", "SELF_DECLARED", "gp-de-linde") in seen
    assert all(e.action in {a.value for a in Action} for e in page.items)


def test_a_new_patients_registration_names_the_registrars_relationship(
    stub: Stub, tokens: Tokens
) -> None:
    patient, _ = _new_patient(stub, tokens)
    entry = _recorded(_latest(stub, tokens, patient), "organisations/gp-de-linde")
    assert (entry.event, entry.reason, entry.purpose) == (
        "REGISTER_PATIENT",
        "SELF_DECLARED",
        "care relationship recorded: organisations/gp-de-linde (coordinating)",
    )

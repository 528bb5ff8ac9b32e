"""A missing plan that the caller sees no practice would hold (nobody coordinates the patient,
or the caller's role is not shown who does) is asked about as a plan the caller's
organisation does not hold (issue 11, points 5 and 6). Over the real careplan and identity
servers with real tokens; identity's ``access_log`` table is read directly.

Before, such a plan was asked about naming no record holder, which identity reads as the
caller's own organisation: any professional with a care relationship got a permit on that
relationship (the entry of a read of its own record, which no plan of the patient would be)
and NOT_FOUND, where an existing plan it may not read answers NO_CONSENT."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import grpc
import pytest

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from testkit.access_log import AccessLogReader, open_access_log
from testkit.fixtures import IdentityService, Tokens, bearer
from testkit.rpc import status_of

from .support import register_patient, relate

# (patient, organisation, action, decision, reason) of a care-plan entry
Entry = tuple[str, ...]


@pytest.fixture
def access_log(identity_service: IdentityService) -> Iterator[AccessLogReader]:
    with open_access_log(
        identity_service.database_url,
        ("patient_id", "organisation_id", "data_category", "action", "decision", "reason"),
    ) as log:
        yield log


def _plan_entries(log: AccessLogReader) -> list[Entry]:
    return [(e[0], e[1], e[3], e[4], e[5]) for e in log.entries() if e[2] == "care-plan"]


def _end_coordination(identity: id_grpc.IdentityServiceStub, token: str, patient: str) -> None:
    """The coordinating practice ends its own coordinating relationship: nobody coordinates."""
    reply = identity.ListCareRelationships(
        id_rpc.ListCareRelationshipsRequest(parent=patient, page_size=100),
        metadata=bearer(token),
        timeout=10,
    )
    (coordinating,) = [
        r
        for r in reply.care_relationships
        if r.kind == id_pb.CARE_RELATIONSHIP_KIND_COORDINATING and not r.HasField("end_time")
    ]
    identity.EndCareRelationship(
        id_rpc.EndCareRelationshipRequest(name=coordinating.name),
        metadata=bearer(token),
        timeout=10,
    )


def _create_plan(stub: rpc_grpc.CarePlanServiceStub, token: str, patient: str) -> None:
    stub.CreateCarePlan(
        rpc.CreateCarePlanRequest(
            parent=patient, care_plan=pb.CarePlan(what_matters=["Blijven wandelen"])
        ),
        metadata=bearer(token),
        timeout=10,
    )


def _get(stub: rpc_grpc.CarePlanServiceStub, token: str, patient: str) -> object:
    return stub.GetCarePlan(
        rpc.GetCarePlanRequest(name=f"{patient}/carePlan"), metadata=bearer(token), timeout=10
    )


@pytest.fixture(scope="module")
def uncoordinated(
    stub: rpc_grpc.CarePlanServiceStub,
    identity_stub: id_grpc.IdentityServiceStub,
    identity_service: IdentityService,
    tokens: Tokens,
) -> tuple[str, str]:
    """Two patients the hospital treats and gp-de-linde coordinated until it ended that
    relationship: the first has the plan gp-de-linde created and holds, the second none.
    Neither opened the care plan to the hospital."""
    jansen = tokens.user("dr.jansen")
    patients = []
    for n, patient_id in ((841, "cp-uncoord-plan"), (842, "cp-uncoord-none")):
        patient = register_patient(identity_service, tokens, patient_id, n, "gp-de-linde")
        relate(
            identity_stub,
            jansen,
            patient,
            "organisations/hosp-catharina",
            id_pb.CARE_RELATIONSHIP_KIND_TREATING,
        )
        patients.append(patient)
    _create_plan(stub, jansen, patients[0])
    for patient in patients:
        _end_coordination(identity_stub, jansen, patient)
    return patients[0], patients[1]


def test_nobody_coordinates_a_missing_plan_is_refused_like_an_existing_one(
    stub: rpc_grpc.CarePlanServiceStub,
    tokens: Tokens,
    uncoordinated: tuple[str, str],
    access_log: AccessLogReader,
) -> None:
    """The hospital has a care relationship and no consent. Nobody coordinates the patients,
    so no practice would hold a plan of the second, and the hospital's organisation would
    not either: both reads are refused alike, each one DENY, and no permit is logged for a
    plan the hospital does not hold."""
    smit = tokens.user("dr.smit")
    with_plan, without = uncoordinated
    answers = {}
    for patient in (with_plan, without):
        access_log.mark()
        answers[patient] = status_of(functools.partial(_get, stub, smit, patient))
        assert _plan_entries(access_log) == [
            (patient.removeprefix("patients/"), "hosp-catharina", "read", "deny", "NO_CONSENT")
        ]
    assert answers[with_plan] == answers[without]
    assert answers[without].code == grpc.StatusCode.PERMISSION_DENIED.value[0]


@pytest.fixture(scope="module")
def supported_by_provider(
    stub: rpc_grpc.CarePlanServiceStub,
    identity_stub: id_grpc.IdentityServiceStub,
    identity_service: IdentityService,
    tokens: Tokens,
) -> tuple[str, str]:
    """Two patients coordinated by gp-de-linde, for whom the care group's admin recorded a
    relationship of the lifestyle provider gli-beweegfit: the first has a plan, the second
    none. Neither opened the care plan to the provider."""
    admin = tokens.user("admin.zuidoost")
    patients = []
    for n, patient_id in ((843, "cp-provider-plan"), (844, "cp-provider-none")):
        patient = register_patient(identity_service, tokens, patient_id, n, "gp-de-linde")
        relate(
            identity_stub,
            admin,
            patient,
            "organisations/gli-beweegfit",
            id_pb.CARE_RELATIONSHIP_KIND_SOCIAL_SUPPORT,
        )
        patients.append(patient)
    _create_plan(stub, tokens.user("dr.jansen"), patients[0])
    return patients[0], patients[1]


def test_a_role_not_shown_who_coordinates_is_refused_a_missing_plan_like_an_existing_one(
    stub: rpc_grpc.CarePlanServiceStub,
    tokens: Tokens,
    supported_by_provider: tuple[str, str],
    access_log: AccessLogReader,
) -> None:
    """identity shows a lifestyle provider only its own organisation's relationships, so
    careplan, asking as the provider, sees nobody coordinate; the provider's organisation
    would never hold a plan. A missing plan and an existing one (the practice's, no
    consent) answer alike, one DENY each."""
    provider = tokens.user("coach.degroot")
    with_plan, without = supported_by_provider
    answers = {}
    for patient in (with_plan, without):
        access_log.mark()
        answers[patient] = status_of(functools.partial(_get, stub, provider, patient))
        assert _plan_entries(access_log) == [
            (patient.removeprefix("patients/"), "gli-beweegfit", "read", "deny", "NO_CONSENT")
        ]
    assert answers[with_plan] == answers[without]


def test_the_practice_that_coordinates_still_finds_no_plan(
    stub: rpc_grpc.CarePlanServiceStub,
    tokens: Tokens,
    supported_by_provider: tuple[str, str],
    access_log: AccessLogReader,
) -> None:
    """Where a practice coordinates and sees it, a missing plan is still its own record to
    be: NOT_FOUND after a permit on the care relationship."""
    access_log.mark()
    answer = status_of(lambda: _get(stub, tokens.user("dr.jansen"), supported_by_provider[1]))
    assert answer.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert _plan_entries(access_log) == [
        (
            supported_by_provider[1].removeprefix("patients/"),
            "gp-de-linde",
            "read",
            "permit",
            "CARE_RELATIONSHIP",
        )
    ]

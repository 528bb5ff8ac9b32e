"""Who creates a patient's care plan: only the patient's coordinating practice (its active
COORDINATING care relationship in the real identity service), which holds the plan; and a
create tells nothing about an existing plan that a read of it would not."""

from __future__ import annotations

import logging

import grpc
import pytest

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from testkit.fixtures import IdentityService, Tokens, bearer
from testkit.rpc import failure

from .conftest import P1, Users, get, sub_of
from .support import register_patient, relate


def _create(stub: rpc_grpc.CarePlanServiceStub, token: str, patient: str) -> pb.CarePlan:
    created: pb.CarePlan = stub.CreateCarePlan(
        rpc.CreateCarePlanRequest(
            parent=patient, care_plan=pb.CarePlan(what_matters=["Weer zelf koken"])
        ),
        metadata=bearer(token),
        timeout=10,
    )
    return created


def test_a_treating_gp_cannot_take_over_the_plan_of_another_practices_patient(
    stub: rpc_grpc.CarePlanServiceStub,
    identity_stub: id_grpc.IdentityServiceStub,
    tokens: Tokens,
    identity_service: IdentityService,
) -> None:
    """dr.devries (gp-het-anker) creates a TREATING relationship with a patient coordinated
    by gp-de-linde: its create is refused and writes nothing; the coordinating practice then
    creates the plan and holds it."""
    patient = register_patient(identity_service, tokens, "cp-coord-takeover", 61, "gp-de-linde")
    devries, jansen = tokens.user("dr.devries"), tokens.user("dr.jansen")
    relate(
        identity_stub,
        devries,
        patient,
        "organisations/gp-het-anker",
        id_pb.CARE_RELATIONSHIP_KIND_TREATING,
    )

    with pytest.raises(grpc.RpcError) as caught:
        _create(stub, devries, patient)

    fail = failure(caught.value)
    assert (fail.code, fail.reason, fail.domain) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_COORDINATING_PRACTICE",
        "careplan.carenet",
    )
    with pytest.raises(grpc.RpcError) as missing:
        get(stub, jansen, f"{patient}/carePlan")
    assert failure(missing.value).reason == "CARE_PLAN_NOT_FOUND"
    created = _create(stub, jansen, patient)
    assert created.record_holder == "organisations/gp-de-linde"
    assert get(stub, jansen, f"{patient}/carePlan").record_holder == "organisations/gp-de-linde"


def test_a_gp_without_any_relationship_and_an_unknown_patient_are_refused_alike(
    stub: rpc_grpc.CarePlanServiceStub, tokens: Tokens, identity_service: IdentityService
) -> None:
    patient = register_patient(identity_service, tokens, "cp-coord-none", 62, "gp-de-linde")
    devries = tokens.user("dr.devries")
    answers = []
    for name in (patient, "patients/cp-coord-nobody"):
        with pytest.raises(grpc.RpcError) as caught:
            _create(stub, devries, name)
        answers.append(failure(caught.value))
    assert answers[0] == answers[1]
    assert answers[0].reason == "NOT_COORDINATING_PRACTICE"


def test_a_create_reports_an_existing_plan_only_to_who_may_read_it(
    stub: rpc_grpc.CarePlanServiceStub,
    identity_stub: id_grpc.IdentityServiceStub,
    tokens: Tokens,
    identity_service: IdentityService,
) -> None:
    """gp-het-anker created the plan; the coordination then moved to gp-de-linde, which has
    no consent to read gp-het-anker's plan: its create gets the refusal its read gets
    (NO_CONSENT), never ALREADY_EXISTS; gp-het-anker, which may read it, is told it exists
    (while it still coordinates)."""
    patient = register_patient(identity_service, tokens, "cp-coord-moved", 63, "gp-het-anker")
    devries, jansen = tokens.user("dr.devries"), tokens.user("dr.jansen")
    admin = tokens.user("admin.zuidoost")
    _create(stub, devries, patient)
    with pytest.raises(grpc.RpcError) as exists:
        _create(stub, devries, patient)
    assert (failure(exists.value).code, failure(exists.value).reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "CARE_PLAN_EXISTS",
    )

    rels = identity_stub.ListCareRelationships(
        id_rpc.ListCareRelationshipsRequest(parent=patient, page_size=100),
        metadata=bearer(devries),
        timeout=10,
    ).care_relationships
    for rel in rels:
        if rel.kind == id_pb.CARE_RELATIONSHIP_KIND_COORDINATING:
            identity_stub.EndCareRelationship(
                id_rpc.EndCareRelationshipRequest(name=rel.name),
                metadata=bearer(devries),
                timeout=10,
            )
    relate(
        identity_stub,
        admin,
        patient,
        "organisations/gp-de-linde",
        id_pb.CARE_RELATIONSHIP_KIND_COORDINATING,
    )

    with pytest.raises(grpc.RpcError) as read:
        get(stub, jansen, f"{patient}/carePlan")
    with pytest.raises(grpc.RpcError) as create:
        _create(stub, jansen, patient)

    assert failure(read.value).reason == "NO_CONSENT"
    assert failure(create.value) == failure(read.value)
    assert "carePlan" not in str(failure(create.value))


def test_a_read_writes_no_patient_user_or_organisation_to_the_service_log(
    stub: rpc_grpc.CarePlanServiceStub,
    users: Users,
    tokens: Tokens,
    plan_p1: pb.CarePlan,
    caplog: pytest.LogCaptureFixture,
) -> None:
    outsider = tokens.user("dr.devries")
    with caplog.at_level(logging.DEBUG, logger="careplan"):
        get(stub, users.gp, P1)
        with pytest.raises(grpc.RpcError):
            get(stub, outsider, P1)
    accesses = [r for r in caplog.records if r.getMessage() == "care_plan_access"]
    assert {getattr(r, "decision", None) for r in accesses} == {"permit", "deny"}
    secrets = ("p-0001", sub_of(users.gp), sub_of(outsider), "gp-de-linde", "gp-het-anker")
    for record in caplog.records:
        written = str(vars(record))
        assert not [s for s in secrets if s in written], record.getMessage()

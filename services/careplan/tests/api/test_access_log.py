"""Every access to a care plan is in identity's access log exactly once, describing the
access that was made: data category, action, patient, user, responsible user, purpose, and
the record holder (seen in the basis: a hospital reads the practice's plan on consent, the
practice its own on the care relationship)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from servicekit.auth import ON_BEHALF_OF_HEADER
from testkit.fixtures import IdentityService, Tokens, bearer
from testkit.rpc import failure

from .conftest import P1, Users, get, sub_of, update
from .support import AccessLog, Logged, register_patient

PATIENT = "patients/p-0001"


@pytest.fixture(scope="module")
def log(identity_stub: id_grpc.IdentityServiceStub, tokens: Tokens) -> AccessLog:
    return AccessLog(identity_stub, tokens.user("auditor.dekker"))


def _one(
    logged: Logged,
    *,
    token: str,
    action: id_pb.Action.ValueType,
    decision: id_pb.Decision.ValueType,
    basis: id_pb.Basis.ValueType = id_pb.BASIS_UNSPECIFIED,
    purpose: str = "care-plan",
    patient: str = PATIENT,
    responsible: str = "",
) -> id_pb.AccessLogEntry:
    """The call's one entry, checked to describe the access it made."""
    assert len(logged.entries) == 1, [
        (id_pb.Action.Name(e.action), id_pb.Decision.Name(e.decision), e.purpose, e.reason)
        for e in logged.entries
    ]
    entry = logged.entries[0]
    user = sub_of(token)
    assert (entry.event, entry.data_category, entry.action, entry.patient) == (
        "AUTHORIZE",
        id_pb.DATA_CATEGORY_CARE_PLAN,
        action,
        patient,
    )
    assert (entry.user, entry.responsible_user, entry.purpose) == (
        user,
        responsible or user,
        purpose,
    )
    assert entry.decision == decision
    if decision == id_pb.DECISION_PERMIT:
        assert entry.basis == basis
    return entry


def test_the_coordinating_practice_reading_its_plan_is_one_read_on_its_own_record(
    stub: rpc_grpc.CarePlanServiceStub, log: AccessLog, users: Users, plan_p1: pb.CarePlan
) -> None:
    get(stub, users.gp)  # the plan is now cached by careplan
    logged = log.around(PATIENT, lambda: get(stub, users.gp))
    entry = _one(
        logged,
        token=users.gp,
        action=id_pb.ACTION_READ,
        decision=id_pb.DECISION_PERMIT,
        basis=id_pb.BASIS_CARE_RELATIONSHIP,
    )
    assert entry.organisation == "organisations/gp-de-linde"


def test_a_hospital_reading_the_practices_plan_is_one_read_on_consent(
    stub: rpc_grpc.CarePlanServiceStub, log: AccessLog, users: Users, plan_p1: pb.CarePlan
) -> None:
    for version in (0, 1):

        def read(v: int = version) -> pb.CarePlan:
            return get(stub, users.specialist, version=v)

        logged = log.around(PATIENT, read)
        entry = _one(
            logged,
            token=users.specialist,
            action=id_pb.ACTION_READ,
            decision=id_pb.DECISION_PERMIT,
            basis=id_pb.BASIS_CARE_RELATIONSHIP_AND_CONSENT,
        )
        assert entry.organisation == "organisations/hosp-catharina"


def test_listing_the_revisions_is_one_read(
    stub: rpc_grpc.CarePlanServiceStub, log: AccessLog, users: Users, plan_p1: pb.CarePlan
) -> None:
    logged = log.around(
        PATIENT,
        lambda: stub.ListCarePlanRevisions(
            rpc.ListCarePlanRevisionsRequest(parent=P1),
            metadata=bearer(users.specialist),
            timeout=10,
        ),
    )
    assert logged.error is None
    _one(
        logged,
        token=users.specialist,
        action=id_pb.ACTION_READ,
        decision=id_pb.DECISION_PERMIT,
        basis=id_pb.BASIS_CARE_RELATIONSHIP_AND_CONSENT,
    )


def test_an_update_is_one_update(
    stub: rpc_grpc.CarePlanServiceStub, log: AccessLog, users: Users, plan_p1: pb.CarePlan
) -> None:
    current = get(stub, users.patient)
    current.consult_preparation.questions[:] = ["Mag ik weer fietsen?"]
    logged = log.around(
        PATIENT, lambda: update(stub, users.patient, current, "consult_preparation.questions")
    )
    assert logged.error is None
    _one(
        logged,
        token=users.patient,
        action=id_pb.ACTION_UPDATE,
        decision=id_pb.DECISION_PERMIT,
        basis=id_pb.BASIS_SELF,
    )


def test_a_refused_read_is_one_denied_read(
    stub: rpc_grpc.CarePlanServiceStub, log: AccessLog, tokens: Tokens, plan_p1: pb.CarePlan
) -> None:
    outsider = tokens.user("dr.devries")
    logged = log.around(PATIENT, lambda: get(stub, outsider))
    assert logged.error is not None
    entry = _one(logged, token=outsider, action=id_pb.ACTION_READ, decision=id_pb.DECISION_DENY)
    assert entry.reason == "NO_CARE_RELATIONSHIP"


def test_a_carer_whose_mandate_changed_between_reads_is_logged_once_as_the_access_made(
    stub: rpc_grpc.CarePlanServiceStub, log: AccessLog, users: Users, plan_p1: pb.CarePlan
) -> None:
    """careplan keeps the plan it read last; the mandate changes in between, so the plan
    it holds implies another question than the plan the next read finds."""
    mandate = "informal-carer-mandate"
    logged = log.around(PATIENT, lambda: get(stub, users.carer))
    _one(
        logged,
        token=users.carer,
        action=id_pb.ACTION_READ,
        decision=id_pb.DECISION_PERMIT,
        basis=id_pb.BASIS_SELF,
        purpose=mandate,
    )
    current = get(stub, users.patient)
    carers = list(current.informal_carers)
    del current.informal_carers[:]
    update(stub, users.patient, current, "informal_carers")
    try:
        logged = log.around(PATIENT, lambda: get(stub, users.carer))
        assert logged.error is not None
        assert failure(logged.error).code == grpc.StatusCode.PERMISSION_DENIED
        entry = _one(
            logged, token=users.carer, action=id_pb.ACTION_READ, decision=id_pb.DECISION_DENY
        )
        assert entry.reason == "NOT_OWN_DATA"
    finally:
        again = get(stub, users.patient)
        again.informal_carers.extend(carers)
        update(stub, users.patient, again, "informal_carers")
    logged = log.around(PATIENT, lambda: get(stub, users.carer))
    assert logged.error is None
    _one(
        logged,
        token=users.carer,
        action=id_pb.ACTION_READ,
        decision=id_pb.DECISION_PERMIT,
        basis=id_pb.BASIS_SELF,
        purpose=mandate,
    )


def test_a_create_is_one_create_and_its_repeat_one_read_of_the_plan_it_returns(
    stub: rpc_grpc.CarePlanServiceStub,
    log: AccessLog,
    tokens: Tokens,
    identity_service: IdentityService,
) -> None:
    patient = register_patient(identity_service, tokens, "cp-log-create", 1, "gp-het-anker")
    gp = tokens.user("dr.devries")
    request = rpc.CreateCarePlanRequest(
        parent=patient,
        care_plan=pb.CarePlan(what_matters=["Zelfstandig blijven wonen"]),
        request_id="log-create-1",
    )

    def create() -> pb.CarePlan:
        created: pb.CarePlan = stub.CreateCarePlan(request, metadata=bearer(gp), timeout=10)
        return created

    first = log.around(patient, create)
    assert first.error is None
    _one(
        first,
        token=gp,
        action=id_pb.ACTION_CREATE,
        decision=id_pb.DECISION_PERMIT,
        basis=id_pb.BASIS_CARE_RELATIONSHIP,
        patient=patient,
    )
    repeat = log.around(patient, create)
    assert repeat.result == first.result
    _one(
        repeat,
        token=gp,
        action=id_pb.ACTION_READ,
        decision=id_pb.DECISION_PERMIT,
        basis=id_pb.BASIS_CARE_RELATIONSHIP,
        patient=patient,
    )


def test_an_update_refused_by_the_field_group_rules_is_one_permitted_update_attempt(
    stub: rpc_grpc.CarePlanServiceStub, log: AccessLog, users: Users, plan_p1: pb.CarePlan
) -> None:
    """A hospital may update the plan (identity permits), but not its status: the one
    entry is the permitted update attempt, and the plan is unchanged."""
    current = get(stub, users.specialist)
    current.status = pb.CARE_PLAN_STATUS_ON_HOLD
    request = rpc.UpdateCarePlanRequest(
        care_plan=current, update_mask=field_mask_pb2.FieldMask(paths=["status"])
    )
    logged = log.around(
        PATIENT,
        lambda: stub.UpdateCarePlan(request, metadata=bearer(users.specialist), timeout=10),
    )
    assert logged.error is not None
    assert failure(logged.error).reason == "FIELD_GROUP_NOT_WRITABLE"
    _one(
        logged,
        token=users.specialist,
        action=id_pb.ACTION_UPDATE,
        decision=id_pb.DECISION_PERMIT,
        basis=id_pb.BASIS_CARE_RELATIONSHIP_AND_CONSENT,
    )
    assert get(stub, users.specialist).version == current.version


def test_a_kis_acting_for_the_gp_is_logged_as_the_kis_for_the_gp_and_writes_as_the_gp(
    stub: rpc_grpc.CarePlanServiceStub,
    log: AccessLog,
    tokens: Tokens,
    users: Users,
    plan_p1: pb.CarePlan,
) -> None:
    """The practice's KIS (a delegate client) names dr.jansen: the read is one entry with the
    KIS as user and dr.jansen as responsible user, and the plan's status (which only the
    coordinating practitioner writes) can be set, so careplan's own rules saw the GP."""
    kis = tokens.client("carenet-kis")
    gp = sub_of(users.gp)
    metadata = (*bearer(kis), (ON_BEHALF_OF_HEADER, gp))
    logged = log.around(
        PATIENT,
        lambda: stub.GetCarePlan(rpc.GetCarePlanRequest(name=P1), metadata=metadata, timeout=10),
    )
    assert logged.error is None
    _one(
        logged,
        token=kis,
        responsible=gp,
        action=id_pb.ACTION_READ,
        decision=id_pb.DECISION_PERMIT,
        basis=id_pb.BASIS_CARE_RELATIONSHIP,
    )
    current: pb.CarePlan = logged.result
    current.status = pb.CARE_PLAN_STATUS_ACTIVE
    request = rpc.UpdateCarePlanRequest(
        care_plan=current, update_mask=field_mask_pb2.FieldMask(paths=["status"])
    )
    written = stub.UpdateCarePlan(request, metadata=metadata, timeout=10)
    assert written.version == current.version + 1

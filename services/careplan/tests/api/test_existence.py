"""No RPC tells whether a patient exists: for a caller who may not see a patient, every
careplan RPC that names a patient answers an existing patient (of this care group or
another) exactly as it answers one that does not exist: the same code, message and
ErrorInfo (the whole google.rpc.Status)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.protobuf import field_mask_pb2

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer
from testkit.rpc import status_of

NOBODY = "patients/p-nobody-404"

Call = Callable[[rpc_grpc.CarePlanServiceStub, str, str], object]


def _get(stub: rpc_grpc.CarePlanServiceStub, token: str, patient: str) -> object:
    return stub.GetCarePlan(
        rpc.GetCarePlanRequest(name=f"{patient}/carePlan"), metadata=bearer(token), timeout=10
    )


def _get_version(stub: rpc_grpc.CarePlanServiceStub, token: str, patient: str) -> object:
    return stub.GetCarePlan(
        rpc.GetCarePlanRequest(name=f"{patient}/carePlan", version=1),
        metadata=bearer(token),
        timeout=10,
    )


def _list(stub: rpc_grpc.CarePlanServiceStub, token: str, patient: str) -> object:
    return stub.ListCarePlanRevisions(
        rpc.ListCarePlanRevisionsRequest(parent=f"{patient}/carePlan"),
        metadata=bearer(token),
        timeout=10,
    )


def _update(stub: rpc_grpc.CarePlanServiceStub, token: str, patient: str) -> object:
    plan = pb.CarePlan(name=f"{patient}/carePlan", etag='W/"1"', what_matters=["Fietsen"])
    return stub.UpdateCarePlan(
        rpc.UpdateCarePlanRequest(
            care_plan=plan, update_mask=field_mask_pb2.FieldMask(paths=["what_matters"])
        ),
        metadata=bearer(token),
        timeout=10,
    )


def _create(stub: rpc_grpc.CarePlanServiceStub, token: str, patient: str) -> object:
    return stub.CreateCarePlan(
        rpc.CreateCarePlanRequest(parent=patient, care_plan=pb.CarePlan(what_matters=["Lopen"])),
        metadata=bearer(token),
        timeout=10,
    )


def _add_goal(stub: rpc_grpc.CarePlanServiceStub, token: str, patient: str) -> object:
    return stub.CreateGoal(
        rpc.CreateGoalRequest(
            parent=f"{patient}/carePlan", goal=pb.Goal(description="Lopen"), etag='W/"1"'
        ),
        metadata=bearer(token),
        timeout=10,
    )


def _remove_action(stub: rpc_grpc.CarePlanServiceStub, token: str, patient: str) -> object:
    return stub.DeleteAction(
        rpc.DeleteActionRequest(name=f"{patient}/carePlan/actions/gli", etag='W/"1"'),
        metadata=bearer(token),
        timeout=10,
    )


RPCS: dict[str, Call] = {
    "GetCarePlan": _get,
    "GetCarePlan(version)": _get_version,
    "ListCarePlanRevisions": _list,
    "UpdateCarePlan": _update,
    "CreateCarePlan": _create,
    "CreateGoal": _add_goal,
    "DeleteAction": _remove_action,
}
# (caller, how they log in, an existing patient they may not see)
CALLERS = [
    ("dr.devries", "kis", "patients/p-0001"),  # a GP without a care relationship
    ("coach.visser", "kis", "patients/p-0001"),  # a municipality coach, no relationship
    ("analist.peters", "kis", "patients/p-0001"),  # an insurer
    ("admin.zuidoost", "kis", "patients/p-0001"),  # a care-group admin
    ("pat.dewit", "app", "patients/p-0002"),  # another patient
    ("dr.noord", "kis", "patients/p-0001"),  # another care group's GP
    ("pat.noord", "app", "patients/p-0001"),  # another care group's patient
]


@pytest.mark.parametrize("rpc_name", list(RPCS))
@pytest.mark.parametrize(("username", "login", "existing"), CALLERS)
def test_a_patient_one_may_not_see_answers_like_one_that_does_not_exist(
    stub: rpc_grpc.CarePlanServiceStub,
    tokens: Tokens,
    plan_p1: pb.CarePlan,
    rpc_name: str,
    username: str,
    login: str,
    existing: str,
) -> None:
    token = tokens.patient(username) if login == "app" else tokens.user(username)
    call = RPCS[rpc_name]
    seen = status_of(lambda: call(stub, token, existing))
    unknown = status_of(lambda: call(stub, token, NOBODY))
    assert seen.code != 0
    assert seen == unknown

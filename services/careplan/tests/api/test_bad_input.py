"""Bad input is INVALID_ARGUMENT naming the field, never INTERNAL: Timestamps out of the range
a Timestamp may hold, numbers that are not finite, a NUL in a stored string, versions no plan
can have, and page tokens whose position has the wrong type."""

from __future__ import annotations

import math
from collections.abc import Callable

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from servicekit import paging
from testkit.fixtures import bearer
from testkit.rpc import Failure, failure

from .conftest import P1, Users, get

MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
BAD_TIMESTAMPS = {
    "after year 9999": (MAX_SECONDS + 1, 0),
    "before year 1": (MIN_SECONDS - 1, 0),
    "the largest seconds": (2**63 - 1, 0),
    "nanos of a whole second": (1_900_000_000, 1_000_000_000),
    "negative nanos": (1_900_000_000, -1),
}


def _invalid(call: Callable[[], object]) -> Failure:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    fail = failure(caught.value)
    assert fail.code == grpc.StatusCode.INVALID_ARGUMENT, fail
    assert (fail.error_infos, fail.domain) == (1, "careplan.carenet")
    return fail


def _ts(seconds: int, nanos: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _put(plan: pb.CarePlan, where: str, value: timestamp_pb2.Timestamp) -> str:
    """Sets the Timestamp at ``where`` in ``plan``; returns its mask path."""
    if where == "goal due date":
        plan.goals.add(
            description="Tien kilo lichter", target=pb.GoalTarget(measure="kg", due_time=value)
        )
        return "goals"
    if where == "action due date":
        plan.actions.add(description="Diëtist", kind=pb.ACTION_KIND_CONSULT, due_time=value)
        return "actions"
    if where == "evaluation moment":
        plan.evaluations.add(review_time=value)
        return "evaluations"
    plan.consult_preparation.agenda.append("Voeding")
    plan.consult_preparation.next_consult_time.CopyFrom(value)
    return "consult_preparation.agenda"


FIELDS = {
    "goal due date": "care_plan.goals[{i}].target.due_time",
    "action due date": "care_plan.actions[{i}].due_time",
    "evaluation moment": "care_plan.evaluations[{i}].review_time",
    "next consult": "care_plan.consult_preparation.next_consult_time",
}


@pytest.mark.parametrize("bad", list(BAD_TIMESTAMPS))
@pytest.mark.parametrize("where", list(FIELDS))
def test_a_timestamp_out_of_range_on_create_names_the_field(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, where: str, bad: str
) -> None:
    plan = pb.CarePlan(what_matters=["Gezond oud worden"])
    _put(plan, where, _ts(*BAD_TIMESTAMPS[bad]))
    fail = _invalid(
        lambda: stub.CreateCarePlan(
            rpc.CreateCarePlanRequest(parent="patients/p-0002", care_plan=plan),
            metadata=bearer(users.gp),
            timeout=10,
        )
    )
    assert fail.field_violations == (FIELDS[where].format(i=0),)
    assert fail.reason == "INVALID_TIMESTAMP"


@pytest.mark.parametrize("where", list(FIELDS))
def test_a_timestamp_out_of_range_on_update_names_the_field(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan, where: str
) -> None:
    current = get(stub, users.gp)
    path = _put(current, where, _ts(*BAD_TIMESTAMPS["after year 9999"]))
    index = len(getattr(current, path)) - 1 if path in ("goals", "actions", "evaluations") else 0
    fail = _invalid(
        lambda: stub.UpdateCarePlan(
            rpc.UpdateCarePlanRequest(
                care_plan=current, update_mask=field_mask_pb2.FieldMask(paths=[path])
            ),
            metadata=bearer(users.gp),
            timeout=10,
        )
    )
    assert fail.field_violations == (FIELDS[where].format(i=index),)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_target_that_is_not_a_finite_number_names_the_field(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, value: float
) -> None:
    plan = pb.CarePlan(
        goals=[pb.Goal(description="HbA1c", target=pb.GoalTarget(measure="HbA1c", high=value))]
    )
    fail = _invalid(
        lambda: stub.CreateCarePlan(
            rpc.CreateCarePlanRequest(parent="patients/p-0002", care_plan=plan),
            metadata=bearer(users.gp),
            timeout=10,
        )
    )
    assert (fail.reason, fail.field_violations) == (
        "INVALID_NUMBER",
        ("care_plan.goals[0].target.high",),
    )


def test_a_progress_value_that_is_not_a_finite_number_names_the_field(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    current = get(stub, users.patient)
    current.goals[0].progress.add(text="Gewogen", value=math.nan)
    fail = _invalid(
        lambda: stub.UpdateCarePlan(
            rpc.UpdateCarePlanRequest(
                care_plan=current, update_mask=field_mask_pb2.FieldMask(paths=["goals.progress"])
            ),
            metadata=bearer(users.patient),
            timeout=10,
        )
    )
    assert fail.field_violations[0].startswith("care_plan.goals[0].progress[")
    assert fail.field_violations[0].endswith("].value")


def test_a_request_id_with_a_nul_character_names_the_field(
    stub: rpc_grpc.CarePlanServiceStub, users: Users
) -> None:
    fail = _invalid(
        lambda: stub.CreateCarePlan(
            rpc.CreateCarePlanRequest(
                parent="patients/p-0002",
                care_plan=pb.CarePlan(what_matters=["Blijven werken"]),
                request_id="r\x00",
            ),
            metadata=bearer(users.gp),
            timeout=10,
        )
    )
    assert fail.field_violations == ("request_id",)


@pytest.mark.parametrize("version", [-1, 2**31, 2**63 - 1])
def test_a_version_no_plan_can_have_names_the_field(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan, version: int
) -> None:
    fail = _invalid(
        lambda: stub.GetCarePlan(
            rpc.GetCarePlanRequest(name=P1, version=version),
            metadata=bearer(users.gp),
            timeout=10,
        )
    )
    assert fail.field_violations == ("version",)


@pytest.mark.parametrize("after", ["x", 1.5, None, [1], {"v": 1}, True, 2**80, -1, 2**31])
def test_a_page_token_whose_position_has_the_wrong_type_or_range_names_the_field(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan, after: object
) -> None:
    """Signed with the key this process's servers use (the test settings give none, so each
    process draws its own): the token is authentic and has the list's fingerprint; only
    the type of its position is wrong, or it names no version a plan can have."""
    token = paging.PageToken({"after": after}, paging.fingerprint("revisions", "p-0001"))
    fail = _invalid(
        lambda: stub.ListCarePlanRevisions(
            rpc.ListCarePlanRevisionsRequest(parent=P1, page_token=token.encode()),
            metadata=bearer(users.gp),
            timeout=10,
        )
    )
    assert (fail.reason, fail.field_violations) == ("INVALID_PAGE_TOKEN", ("page_token",))


def test_a_page_token_made_without_the_key_is_refused(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    forged = paging.PageToken({"after": 1}, paging.fingerprint("revisions", "p-0001"))
    fail = _invalid(
        lambda: stub.ListCarePlanRevisions(
            rpc.ListCarePlanRevisionsRequest(
                parent=P1, page_token=forged.encode(b"k" * paging.MIN_KEY_BYTES)
            ),
            metadata=bearer(users.gp),
            timeout=10,
        )
    )
    assert (fail.reason, fail.field_violations) == ("INVALID_PAGE_TOKEN", ("page_token",))

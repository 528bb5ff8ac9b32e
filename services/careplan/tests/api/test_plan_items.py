"""Item-level edits on the real server with real tokens and identity's real decisions: one
goal, action or evaluation moment by its id, at the plan's etag, without sending anyone
else's items; refusals name the item; a retry with the same request_id changes nothing."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from servicekit.auth import ON_BEHALF_OF_HEADER
from testkit.fixtures import Tokens, bearer
from testkit.rpc import failure

from .conftest import P1, Users, get, sub_of, ts, update
from .support import AccessLog

PATIENT = "patients/p-0001"


def _info(error: grpc.RpcError) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    """The code, and the reason and metadata of the status's one ErrorInfo."""
    status = rpc_status.from_call(error)
    assert status is not None
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    return error.code(), info.reason, dict(info.metadata)


def _refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def _revisions(stub: rpc_grpc.CarePlanServiceStub, token: str) -> list[int]:
    page = stub.ListCarePlanRevisions(
        rpc.ListCarePlanRevisionsRequest(parent=P1, page_size=1000),
        metadata=bearer(token),
        timeout=10,
    )
    return [r.version for r in page.care_plan_revisions]


def test_the_patient_adds_changes_and_removes_a_goal_by_its_id_with_the_plans_etag(
    stub: rpc_grpc.CarePlanServiceStub,
    identity_stub: id_grpc.IdentityServiceStub,
    tokens: Tokens,
    users: Users,
    plan_p1: pb.CarePlan,
) -> None:
    log = AccessLog(identity_stub, tokens.user("auditor.dekker"))
    before = get(stub, users.patient)
    others = list(before.goals)
    logged = log.around(
        PATIENT,
        lambda: stub.CreateGoal(
            rpc.CreateGoalRequest(
                parent=P1,
                goal=pb.Goal(id="api-swim", description="Elke week zwemmen"),
                etag=before.etag,
            ),
            metadata=bearer(users.patient),
            timeout=10,
        ),
    )
    assert logged.error is None
    added: pb.CarePlan = logged.result
    # One access-log entry, an update of the plan, as for UpdateCarePlan.
    assert [(e.action, e.decision) for e in logged.entries] == [
        (id_pb.ACTION_UPDATE, id_pb.DECISION_PERMIT)
    ]
    assert added.version == before.version + 1 and added.etag != before.etag
    swim = next(g for g in added.goals if g.id == "api-swim")
    assert swim.owner == PATIENT
    assert list(added.goals)[: len(others)] == others  # nobody else's goal was sent or changed

    changed = stub.UpdateGoal(
        rpc.UpdateGoalRequest(
            name=f"{P1}/goals/api-swim",
            goal=pb.Goal(notes="In het buurtbad"),
            etag=added.etag,
        ),
        metadata=bearer(users.patient),
        timeout=10,
    )
    swim = next(g for g in changed.goals if g.id == "api-swim")
    assert (swim.description, swim.notes) == ("Elke week zwemmen", "In het buurtbad")

    removed = stub.DeleteGoal(
        rpc.DeleteGoalRequest(name=f"{P1}/goals/api-swim", etag=changed.etag),
        metadata=bearer(users.patient),
        timeout=10,
    )
    assert [g.id for g in removed.goals] == [g.id for g in others]
    assert removed == get(stub, users.patient, version=removed.version)


def test_a_stale_etag_is_aborted_and_changes_nothing(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    current = get(stub, users.specialist)
    stale = get(stub, users.specialist, version=current.version - 1).etag
    error = _refused(
        lambda: stub.CreateAction(
            rpc.CreateActionRequest(
                parent=P1,
                action=pb.Action(
                    description="Longfunctie herhalen",
                    kind=pb.ACTION_KIND_CONSULT,
                    responsible_organisation="organisations/hosp-catharina",
                ),
                etag=stale,
            ),
            metadata=bearer(users.specialist),
            timeout=10,
        )
    )
    assert _info(error)[:2] == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    assert get(stub, users.specialist).version == current.version


def test_another_partys_items_are_refused_naming_the_item(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    plan = get(stub, users.patient)
    goal = _refused(
        lambda: stub.UpdateGoal(
            rpc.UpdateGoalRequest(
                name=f"{P1}/goals/hba1c",  # the practice's goal
                goal=pb.Goal(description="HbA1c onder 60"),
                etag=plan.etag,
            ),
            metadata=bearer(users.patient),
            timeout=10,
        )
    )
    assert _info(goal) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "GOAL_NOT_OWNED",
        {"goal_id": "hba1c", "field": "goal"},
    )
    action = _refused(
        lambda: stub.DeleteAction(
            rpc.DeleteActionRequest(name=f"{P1}/actions/gli", etag=plan.etag),  # the practice's
            metadata=bearer(users.specialist),
            timeout=10,
        )
    )
    assert _info(action) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ACTION_NOT_OWN_ORGANISATION",
        {"action_id": "gli"},
    )
    # The whole-list update names the item too.
    mine = get(stub, users.specialist)
    gli = next(a for a in mine.actions if a.id == "gli")
    gli.description = "GLI bij een andere aanbieder"
    whole = _refused(lambda: update(stub, users.specialist, mine, "actions"))
    code, reason, metadata = _info(whole)
    assert (code, reason, metadata["action_id"]) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ACTION_NOT_OWN_ORGANISATION",
        "gli",
    )
    assert metadata["field"].startswith("care_plan.actions[")
    assert get(stub, users.patient).version == plan.version


def test_a_group_the_role_may_not_write_is_refused_before_the_etag_is_looked_at(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    error = _refused(
        lambda: stub.CreateEvaluationMoment(
            rpc.CreateEvaluationMomentRequest(
                parent=P1,
                evaluation_moment=pb.EvaluationMoment(review_time=ts(60)),
                etag='W/"1"',  # stale as well: PERMISSION_DENIED takes precedence (AIP-154)
            ),
            metadata=bearer(users.specialist),
            timeout=10,
        )
    )
    assert _info(error) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "FIELD_GROUP_NOT_WRITABLE",
        {"field_group": "evaluations", "role": "professional"},
    )


def test_the_coordinating_practice_changes_an_evaluation_moment_field_by_field(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    plan = get(stub, users.gp)
    review = next(e for e in plan.evaluations if e.id == "review-1")
    written = stub.UpdateEvaluationMoment(
        rpc.UpdateEvaluationMomentRequest(
            name=f"{P1}/evaluations/review-1",
            evaluation_moment=pb.EvaluationMoment(outcome="Gewicht 3 kg lager"),
            update_mask=field_mask_pb2.FieldMask(paths=["outcome"]),
            etag=plan.etag,
        ),
        metadata=bearer(users.gp),
        timeout=10,
    )
    after = next(e for e in written.evaluations if e.id == "review-1")
    assert after.outcome == "Gewicht 3 kg lager"
    assert after.review_time == review.review_time


def test_another_organisations_patient_is_refused_like_one_that_does_not_exist(
    stub: rpc_grpc.CarePlanServiceStub, tokens: Tokens, plan_p1: pb.CarePlan
) -> None:
    other_gp = tokens.user("dr.devries")  # gp-het-anker: no care relationship with p-0001

    def add_goal(parent: str) -> grpc.RpcError:
        return _refused(
            lambda: stub.CreateGoal(
                rpc.CreateGoalRequest(
                    parent=parent,
                    goal=pb.Goal(description="Stoppen met roken"),
                    etag=plan_p1.etag,
                ),
                metadata=bearer(other_gp),
                timeout=10,
            )
        )

    seen, unknown = add_goal(P1), add_goal("patients/p-nobody-404/carePlan")
    assert failure(seen).code == grpc.StatusCode.PERMISSION_DENIED
    assert rpc_status.from_call(seen) == rpc_status.from_call(unknown)


def test_a_retry_with_the_same_request_id_returns_the_first_answer_and_writes_once(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    plan = get(stub, users.specialist)
    request = rpc.CreateActionRequest(
        parent=P1,
        action=pb.Action(
            id="api-ecg",
            description="ECG maken",
            kind=pb.ACTION_KIND_CONSULT,
            responsible_organisation="organisations/hosp-catharina",
        ),
        etag=plan.etag,
        request_id="api-items-retry",
    )
    first = stub.CreateAction(request, metadata=bearer(users.specialist), timeout=10)
    revisions = _revisions(stub, users.specialist)

    again = stub.CreateAction(request, metadata=bearer(users.specialist), timeout=10)

    assert again == first
    assert _revisions(stub, users.specialist) == revisions
    request.action.description = "ECG en echo maken"
    request.etag = first.etag
    reused = _refused(
        lambda: stub.CreateAction(request, metadata=bearer(users.specialist), timeout=10)
    )
    assert (failure(reused).code, failure(reused).reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )
    stub.DeleteAction(
        rpc.DeleteActionRequest(name=f"{P1}/actions/api-ecg", etag=first.etag),
        metadata=bearer(users.specialist),
        timeout=10,
    )


def test_bad_item_names_and_masks_are_invalid(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    plan = get(stub, users.patient)
    calls: list[tuple[Callable[[], object], str]] = [
        (
            lambda: stub.DeleteGoal(
                rpc.DeleteGoalRequest(name=f"{P1}/actions/walk", etag=plan.etag),
                metadata=bearer(users.patient),
                timeout=10,
            ),
            "INVALID_RESOURCE_NAME",
        ),
        (
            lambda: stub.UpdateGoal(
                rpc.UpdateGoalRequest(
                    name=f"{P1}/goals/walk",
                    goal=pb.Goal(description="x"),
                    update_mask=field_mask_pb2.FieldMask(paths=["create_time"]),
                    etag=plan.etag,
                ),
                metadata=bearer(users.patient),
                timeout=10,
            ),
            "FIELD_NOT_UPDATABLE",
        ),
        (
            lambda: stub.DeleteGoal(
                rpc.DeleteGoalRequest(name=f"{P1}/goals/walk"),
                metadata=bearer(users.patient),
                timeout=10,
            ),
            "ETAG_REQUIRED",
        ),
    ]
    for call, reason in calls:
        fail = failure(_refused(call))
        assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert get(stub, users.patient).version == plan.version
    missing = _refused(
        lambda: stub.DeleteGoal(
            rpc.DeleteGoalRequest(name=f"{P1}/goals/no-such-goal", etag=plan.etag),
            metadata=bearer(users.patient),
            timeout=10,
        )
    )
    assert _info(missing) == (
        grpc.StatusCode.NOT_FOUND,
        "GOAL_NOT_FOUND",
        {"goal_id": "no-such-goal"},
    )


def test_a_kis_acting_for_the_gp_edits_an_item_as_the_gp_logged_as_the_kis_for_the_gp(
    stub: rpc_grpc.CarePlanServiceStub,
    identity_stub: id_grpc.IdentityServiceStub,
    tokens: Tokens,
    users: Users,
    plan_p1: pb.CarePlan,
) -> None:
    """The practice's KIS (a delegate) names dr.jansen: its item edit is the GP's (an
    evaluation moment, which only the coordinating practice writes), in one UPDATE entry
    with the KIS as user and dr.jansen as responsible user."""
    log = AccessLog(identity_stub, tokens.user("auditor.dekker"))
    kis = tokens.client("carenet-kis")
    gp = sub_of(users.gp)
    metadata = (*bearer(kis), (ON_BEHALF_OF_HEADER, gp))
    plan = get(stub, users.gp)
    logged = log.around(
        PATIENT,
        lambda: stub.CreateEvaluationMoment(
            rpc.CreateEvaluationMomentRequest(
                parent=P1,
                evaluation_moment=pb.EvaluationMoment(review_time=ts(120)),
                etag=plan.etag,
            ),
            metadata=metadata,
            timeout=10,
        ),
    )
    assert logged.error is None
    written: pb.CarePlan = logged.result
    assert written.version == plan.version + 1
    assert written.evaluations[-1].organisation == "organisations/gp-de-linde"
    assert [(e.action, e.user, e.responsible_user) for e in logged.entries] == [
        (id_pb.ACTION_UPDATE, sub_of(kis), gp)
    ]

"""The care-plan API on a real server that asks the real identity server, with real tokens."""

from __future__ import annotations

import grpc
import pytest

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer
from testkit.rpc import Failure, failure

from .conftest import P1, REFERRAL, Users, get, initial_plan, ts, update


def _fails(call: object, *args: object, **kwargs: object) -> Failure:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    fail = failure(caught.value)
    assert fail.error_infos == 1
    assert fail.domain == "careplan.carenet"
    return fail


def test_the_creating_practice_holds_the_plan_and_coordinates_it(plan_p1: pb.CarePlan) -> None:
    assert plan_p1.name == P1
    assert plan_p1.record_holder == "organisations/gp-de-linde"
    assert plan_p1.status == pb.CARE_PLAN_STATUS_ACTIVE
    assert plan_p1.participants[0].role == pb.PARTICIPANT_ROLE_COORDINATING_PRACTITIONER
    assert plan_p1.actions[0].referral == REFERRAL
    assert plan_p1.etag == 'W/"1"'


def test_a_repeated_create_with_the_same_request_id_returns_the_plan_as_created(
    stub: rpc_grpc.CarePlanServiceStub,
    users: Users,
    plan_p1: pb.CarePlan,
    create_p1: rpc.CreateCarePlanRequest,
) -> None:
    again = stub.CreateCarePlan(create_p1, metadata=bearer(users.gp), timeout=10)
    assert again == plan_p1


def test_a_second_plan_for_a_patient_already_exists(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    fail = _fails(
        stub.CreateCarePlan,
        rpc.CreateCarePlanRequest(parent="patients/p-0001", care_plan=initial_plan()),
        metadata=bearer(users.gp),
        timeout=10,
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.ALREADY_EXISTS, "CARE_PLAN_EXISTS")


def test_the_patient_always_sees_their_own_plan(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    plan = get(stub, users.patient)
    assert [g.id for g in plan.goals] == ["walk", "hba1c", "lung"]


def test_the_mandated_carer_reads_the_plan(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    assert get(stub, users.carer).name == P1


def test_another_tenants_plan_is_refused(
    stub: rpc_grpc.CarePlanServiceStub, tokens: Tokens, plan_p1: pb.CarePlan
) -> None:
    """(and exactly like a patient that does not exist: see test_existence)"""
    for token in (tokens.user("dr.noord"), tokens.patient("pat.noord")):
        fail = _fails(
            stub.GetCarePlan, rpc.GetCarePlanRequest(name=P1), metadata=bearer(token), timeout=10
        )
        assert fail.code == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("dr.devries", "NO_CARE_RELATIONSHIP"),
        ("analist.peters", "INSURER_NO_PATIENT_DATA"),
        ("admin.zuidoost", "ROLE_NOT_PERMITTED"),
    ],
)
def test_identity_decides_who_may_read(
    stub: rpc_grpc.CarePlanServiceStub,
    tokens: Tokens,
    plan_p1: pb.CarePlan,
    username: str,
    reason: str,
) -> None:
    fail = _fails(
        stub.GetCarePlan,
        rpc.GetCarePlanRequest(name=P1),
        metadata=bearer(tokens.user(username)),
        timeout=10,
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, reason)


def test_another_patient_without_a_mandate_is_denied(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, tokens: Tokens, plan_p1: pb.CarePlan
) -> None:
    fail = _fails(
        stub.GetCarePlan,
        rpc.GetCarePlanRequest(name="patients/p-0002/carePlan"),
        metadata=bearer(users.patient),
        timeout=10,
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWN_DATA")


def test_a_call_without_a_token_is_unauthenticated(stub: rpc_grpc.CarePlanServiceStub) -> None:
    fail = _fails(stub.GetCarePlan, rpc.GetCarePlanRequest(name=P1), timeout=10)
    assert (fail.code, fail.reason) == (grpc.StatusCode.UNAUTHENTICATED, "MISSING_TOKEN")


def test_a_version_read_back_equals_what_was_written_then(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    current = get(stub, users.patient)
    current.what_matters[:] = ["Zelf mijn boodschappen blijven doen"]
    written = update(stub, users.patient, current, "what_matters")
    later = get(stub, users.patient)
    later.consult_preparation.topics[:] = ["Voetklachten"]
    update(stub, users.patient, later, "consult_preparation.topics")
    assert get(stub, users.patient, version=written.version) == written
    assert get(stub, users.gp, version=1).what_matters == ["Weer fietsen met mijn kleinkinderen"]


def test_revisions_list_in_order_with_their_authors(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    current = get(stub, users.gp)
    current.status = pb.CARE_PLAN_STATUS_ACTIVE
    written = update(stub, users.gp, current, "status")
    revisions: list[pb.CarePlanRevision] = []
    token = ""
    while True:
        page = stub.ListCarePlanRevisions(
            rpc.ListCarePlanRevisionsRequest(parent=P1, page_size=2, page_token=token),
            metadata=bearer(users.specialist),
            timeout=10,
        )
        revisions.extend(page.care_plan_revisions)
        token = page.next_page_token
        if not token:
            break
    versions = [r.version for r in revisions]
    assert versions == sorted(versions) == list(range(1, written.version + 1))
    assert revisions[0].organisation == "organisations/gp-de-linde"
    assert revisions[0].change_summary == "created"
    assert revisions[1].changed_fields == ["informal_carers"]
    assert revisions[1].organisation == ""
    assert revisions[-1].name == f"{P1}/revisions/{written.version}"
    assert revisions[0].author != revisions[1].author


def test_an_unknown_goal_status_names_the_field(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    current = get(stub, users.patient)
    current.goals[0].lifecycle_status = 99  # type: ignore[assignment]
    fail = _fails(update, stub, users.patient, current, "goals")
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_ENUM_VALUE")
    assert fail.field_violations == ("care_plan.goals[0].lifecycle_status",)


def test_a_due_date_before_the_creation_date_names_the_field(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    current = get(stub, users.patient)
    current.goals[0].target.due_time.CopyFrom(ts(-400))
    fail = _fails(update, stub, users.patient, current, "goals")
    assert (fail.code, fail.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "DUE_DATE_BEFORE_CREATION",
    )
    assert fail.field_violations == ("care_plan.goals[0].target.due_time",)


def test_an_empty_patient_text_names_the_field(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    current = get(stub, users.patient)
    current.goals[0].description = " "
    fail = _fails(update, stub, users.patient, current, "goals")
    assert (fail.code, fail.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "TEXT_REQUIRED")
    assert fail.field_violations == ("care_plan.goals[0].description",)


def test_an_update_without_an_etag_is_invalid(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    current = get(stub, users.patient)
    current.etag = ""
    fail = _fails(update, stub, users.patient, current, "what_matters")
    assert (fail.code, fail.reason, fail.field_violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "ETAG_REQUIRED",
        ("care_plan.etag",),
    )


def test_a_stale_etag_is_aborted(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    current = get(stub, users.patient)
    update(stub, users.patient, current, "what_matters")
    fail = _fails(update, stub, users.patient, current, "what_matters")
    assert (fail.code, fail.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")


def test_a_plan_that_does_not_exist_is_not_found(
    stub: rpc_grpc.CarePlanServiceStub, tokens: Tokens
) -> None:
    fail = _fails(
        stub.GetCarePlan,
        rpc.GetCarePlanRequest(name="patients/p-0003/carePlan"),
        metadata=bearer(tokens.user("dr.devries")),
        timeout=10,
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.NOT_FOUND, "CARE_PLAN_NOT_FOUND")


def test_a_malformed_name_is_invalid(stub: rpc_grpc.CarePlanServiceStub, users: Users) -> None:
    fail = _fails(
        stub.GetCarePlan,
        rpc.GetCarePlanRequest(name="carePlans/x"),
        metadata=bearer(users.gp),
        timeout=10,
    )
    assert (fail.code, fail.field_violations) == (grpc.StatusCode.INVALID_ARGUMENT, ("name",))


def test_a_page_size_above_the_maximum_is_capped_not_refused(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, plan_p1: pb.CarePlan
) -> None:
    """AIP-158: 0 is the default (50), above 1,000 is 1,000."""
    page = stub.ListCarePlanRevisions(
        rpc.ListCarePlanRevisionsRequest(parent=P1, page_size=1_000_000),
        metadata=bearer(users.gp),
        timeout=10,
    )
    assert page.care_plan_revisions
    assert page.care_plan_revisions[0].version == 1

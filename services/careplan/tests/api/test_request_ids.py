"""CreateCarePlan's request_id (AIP-155): the same request again returns the plan it
created and writes nothing; the same id with another request is refused, and the first
plan is not returned."""

from __future__ import annotations

import grpc
import pytest

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from servicekit.auth import ON_BEHALF_OF_HEADER
from testkit.fixtures import IdentityService, Tokens, bearer
from testkit.rpc import failure

from .conftest import sub_of
from .support import register_patient


def _revisions(stub: rpc_grpc.CarePlanServiceStub, token: str, patient: str) -> list[int]:
    page = stub.ListCarePlanRevisions(
        rpc.ListCarePlanRevisionsRequest(parent=f"{patient}/carePlan", page_size=100),
        metadata=bearer(token),
        timeout=10,
    )
    return [r.version for r in page.care_plan_revisions]


def test_the_same_request_id_with_the_same_request_returns_the_same_plan_once(
    stub: rpc_grpc.CarePlanServiceStub, tokens: Tokens, identity_service: IdentityService
) -> None:
    patient = register_patient(identity_service, tokens, "cp-rid-same", 11, "gp-het-anker")
    gp = tokens.user("dr.devries")
    request = rpc.CreateCarePlanRequest(
        parent=patient,
        care_plan=pb.CarePlan(what_matters=["Weer kunnen werken"]),
        request_id="rid-same",
    )
    first = stub.CreateCarePlan(request, metadata=bearer(gp), timeout=10)
    again = stub.CreateCarePlan(request, metadata=bearer(gp), timeout=10)
    assert again == first
    assert _revisions(stub, gp, patient) == [1]


@pytest.mark.parametrize("change", ["another patient", "another plan"])
def test_the_same_request_id_with_another_request_is_refused(
    stub: rpc_grpc.CarePlanServiceStub,
    tokens: Tokens,
    identity_service: IdentityService,
    change: str,
) -> None:
    n = 20 if change == "another patient" else 30
    first_patient = register_patient(identity_service, tokens, f"cp-rid-{n}", n, "gp-het-anker")
    other_patient = register_patient(
        identity_service, tokens, f"cp-rid-{n + 1}", n + 1, "gp-het-anker"
    )
    gp = tokens.user("dr.devries")
    request_id = f"rid-reuse-{n}"
    first = rpc.CreateCarePlanRequest(
        parent=first_patient,
        care_plan=pb.CarePlan(what_matters=["Zelf boodschappen doen"]),
        request_id=request_id,
    )
    stub.CreateCarePlan(first, metadata=bearer(gp), timeout=10)
    second = rpc.CreateCarePlanRequest()
    second.CopyFrom(first)
    if change == "another patient":
        second.parent = other_patient
    else:
        second.care_plan.what_matters[:] = ["Iets anders"]

    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateCarePlan(second, metadata=bearer(gp), timeout=10)

    fail = failure(caught.value)
    assert (fail.code, fail.reason, fail.field_violations, fail.domain) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
        ("request_id",),
        "careplan.carenet",
    )
    assert _revisions(stub, gp, first_patient) == [1]
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetCarePlan(
            rpc.GetCarePlanRequest(name=f"{other_patient}/carePlan"),
            metadata=bearer(gp),
            timeout=10,
        )
    assert failure(missing.value).reason == "CARE_PLAN_NOT_FOUND"


def test_the_same_request_from_a_kis_for_another_person_is_another_request(
    stub: rpc_grpc.CarePlanServiceStub, tokens: Tokens, identity_service: IdentityService
) -> None:
    """The practice's KIS sends the same body with the same request_id, first for dr.jansen,
    then for the practice nurse: the second is not a repeat of the first."""
    first_patient = register_patient(identity_service, tokens, "cp-rid-kis", 40, "gp-de-linde")
    kis = bearer(tokens.client("carenet-kis"))
    request = rpc.CreateCarePlanRequest(
        parent=first_patient,
        care_plan=pb.CarePlan(what_matters=["Blijven wandelen"]),
        request_id="rid-kis",
    )
    for_gp = (*kis, (ON_BEHALF_OF_HEADER, sub_of(tokens.user("dr.jansen"))))
    for_nurse = (*kis, (ON_BEHALF_OF_HEADER, sub_of(tokens.user("poh.bakker"))))
    first = stub.CreateCarePlan(request, metadata=for_gp, timeout=10)
    assert stub.CreateCarePlan(request, metadata=for_gp, timeout=10) == first
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateCarePlan(request, metadata=for_nurse, timeout=10)
    assert failure(caught.value).reason == "REQUEST_ID_REUSED"

"""What careplan logs at identity is the access that happened, and a plan's existence is
told to nobody who may not read it (issue 11, points 5 and 6). Over the real careplan and
identity servers with real tokens; identity's ``access_log`` table is read directly, so
that an entry of any data category (a care-relationship read too) is counted."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

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
from testkit.rpc import Failure, failure

from .support import register_patient

# (event, patient, organisation, data category, action, decision, reason)
Entry = tuple[str, ...]


@pytest.fixture
def access_log(identity_service: IdentityService) -> Iterator[AccessLogReader]:
    with open_access_log(
        identity_service.database_url,
        ("event", "patient_id", "organisation_id", "data_category", "action", "decision", "reason"),
    ) as log:
        yield log


@pytest.fixture(scope="module")
def treated_by_hospital(
    stub: rpc_grpc.CarePlanServiceStub,
    identity_stub: id_grpc.IdentityServiceStub,
    identity_service: IdentityService,
    tokens: Tokens,
) -> tuple[str, str]:
    """Two patients of dr.jansen's practice whom the hospital also treats, neither of whom
    opened the care plan to the hospital: the first has a plan, the second none."""
    gp = tokens.user("dr.jansen")
    patients = []
    for n, patient_id in ((731, "cp-exist-plan"), (732, "cp-exist-none")):
        patient = register_patient(identity_service, tokens, patient_id, n, "gp-de-linde")
        identity_stub.CreateCareRelationship(
            id_rpc.CreateCareRelationshipRequest(
                parent=patient,
                care_relationship=id_pb.CareRelationship(
                    organisation="organisations/hosp-catharina",
                    kind=id_pb.CARE_RELATIONSHIP_KIND_TREATING,
                ),
            ),
            metadata=bearer(gp),
            timeout=10,
        )
        patients.append(patient)
    stub.CreateCarePlan(
        rpc.CreateCarePlanRequest(
            parent=patients[0], care_plan=pb.CarePlan(what_matters=["Blijven fietsen"])
        ),
        metadata=bearer(gp),
        timeout=10,
    )
    return patients[0], patients[1]


def _refused(call: Callable[[], Any]) -> Failure:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return failure(caught.value)


def test_a_missing_plan_is_refused_like_an_existing_one_without_consent(
    stub: rpc_grpc.CarePlanServiceStub,
    tokens: Tokens,
    treated_by_hospital: tuple[str, str],
    access_log: AccessLogReader,
) -> None:
    """The hospital has a care relationship and no consent: the patient with a plan and the
    one without answer the same code, message and ErrorInfo, and neither read is logged as
    a permit (the plan would be the coordinating practice's record, not the hospital's)."""
    smit = bearer(tokens.user("dr.smit"))
    with_plan, without = treated_by_hospital
    fails = {}
    for patient in (with_plan, without):
        request = rpc.GetCarePlanRequest(name=f"{patient}/carePlan")
        access_log.mark()
        fails[patient] = _refused(
            functools.partial(stub.GetCarePlan, request, metadata=smit, timeout=10)
        )
        reads = [e for e in access_log.entries() if e[3] == "care-plan"]
        assert [(e[1], e[2], e[4], e[5], e[6]) for e in reads] == [
            (patient.removeprefix("patients/"), "hosp-catharina", "read", "deny", "NO_CONSENT")
        ]
    assert fails[with_plan] == fails[without]
    assert (fails[without].code, fails[without].reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NO_CONSENT",
    )


def test_the_coordinating_practice_still_finds_no_plan(
    stub: rpc_grpc.CarePlanServiceStub,
    tokens: Tokens,
    treated_by_hospital: tuple[str, str],
    access_log: AccessLogReader,
) -> None:
    """For the practice that would hold it, a missing plan is NOT_FOUND after a permitted
    read of its own record."""
    access_log.mark()
    fail = _refused(
        lambda: stub.GetCarePlan(
            rpc.GetCarePlanRequest(name=f"{treated_by_hospital[1]}/carePlan"),
            metadata=bearer(tokens.user("dr.jansen")),
            timeout=10,
        )
    )
    assert fail.code == grpc.StatusCode.NOT_FOUND
    reads = [e for e in access_log.entries() if e[3] == "care-plan"]
    assert [(e[2], e[4], e[5], e[6]) for e in reads] == [
        ("gp-de-linde", "read", "permit", "CARE_RELATIONSHIP")
    ]


def test_creating_a_plan_that_exists_is_logged_once_as_the_read_it_is(
    stub: rpc_grpc.CarePlanServiceStub,
    tokens: Tokens,
    treated_by_hospital: tuple[str, str],
    access_log: AccessLogReader,
) -> None:
    """Nothing is created and nothing but ALREADY_EXISTS is returned: the one entry is the
    practice's permitted read of its own plan (no care-relationship read, no create)."""
    patient = treated_by_hospital[0]
    access_log.mark()
    fail = _refused(
        lambda: stub.CreateCarePlan(
            rpc.CreateCarePlanRequest(parent=patient, care_plan=pb.CarePlan()),
            metadata=bearer(tokens.user("dr.jansen")),
            timeout=10,
        )
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.ALREADY_EXISTS, "CARE_PLAN_EXISTS")
    assert [e[1:] for e in access_log.entries()] == [
        (
            patient.removeprefix("patients/"),
            "gp-de-linde",
            "care-plan",
            "read",
            "permit",
            "CARE_RELATIONSHIP",
        )
    ]

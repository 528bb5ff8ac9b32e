"""API fixtures: the shared plan of p-0001, created through the API by dr.jansen, with
pat.yilmaz mandated by pat.dewit as her informal carer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from testkit.fixtures import Tokens, bearer

P1 = "patients/p-0001/carePlan"
REFERRAL = "patients/p-0001/referrals/gli-api"


def ts(days: int) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(days=days))
    return out


def initial_plan() -> pb.CarePlan:
    return pb.CarePlan(
        what_matters=["Weer fietsen met mijn kleinkinderen"],
        conditions=[
            pb.Condition(
                id="dm2", code="T90.02", system="ICPC-1", display="Diabetes mellitus type 2"
            )
        ],
        participants=[
            pb.Participant(
                role=pb.PARTICIPANT_ROLE_HOSPITAL, organisation="organisations/hosp-catharina"
            ),
            pb.Participant(
                role=pb.PARTICIPANT_ROLE_LIFESTYLE_PROVIDER,
                organisation="organisations/gli-beweegfit",
            ),
        ],
        goals=[
            pb.Goal(
                id="walk",
                description="Elke dag een half uur wandelen",
                target=pb.GoalTarget(
                    measure="minutes walked a day", low=30, unit="min/d", due_time=ts(90)
                ),
                lifecycle_status=pb.GOAL_LIFECYCLE_STATUS_ACTIVE,
                owner="patients/p-0001",
            ),
            pb.Goal(
                id="hba1c",
                description="HbA1c op of onder 53",
                target=pb.GoalTarget(measure="HbA1c", high=53, unit="mmol/mol"),
                owner="organisations/gp-de-linde",
            ),
            pb.Goal(
                id="lung", description="Minder kortademig", owner="organisations/hosp-catharina"
            ),
        ],
        actions=[
            pb.Action(
                id="gli",
                description="GLI bij BeweegFit",
                kind=pb.ACTION_KIND_REFERRAL,
                referral=REFERRAL,
                goals=["walk"],
            ),
            pb.Action(
                id="scan",
                description="Longfunctieonderzoek",
                kind=pb.ACTION_KIND_CONSULT,
                responsible_organisation="organisations/hosp-catharina",
            ),
        ],
        evaluations=[pb.EvaluationMoment(id="review-1", review_time=ts(90))],
    )


@dataclass(frozen=True)
class Users:
    gp: str
    patient: str
    carer: str
    carer_sub: str
    specialist: str


def sub_of(token: str) -> str:
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    return str(claims["sub"])


@pytest.fixture(scope="package")
def users(tokens: Tokens) -> Users:
    carer = tokens.patient("pat.yilmaz")
    return Users(
        gp=tokens.user("dr.jansen"),
        patient=tokens.patient("pat.dewit"),
        carer=carer,
        carer_sub=sub_of(carer),
        specialist=tokens.user("dr.smit"),
    )


def update(
    stub: rpc_grpc.CarePlanServiceStub, token: str, plan: pb.CarePlan, *paths: str
) -> pb.CarePlan:
    request = rpc.UpdateCarePlanRequest(
        care_plan=plan, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )
    reply: pb.CarePlan = stub.UpdateCarePlan(request, metadata=bearer(token), timeout=10)
    return reply


def get(
    stub: rpc_grpc.CarePlanServiceStub, token: str, name: str = P1, version: int = 0
) -> pb.CarePlan:
    reply: pb.CarePlan = stub.GetCarePlan(
        rpc.GetCarePlanRequest(name=name, version=version), metadata=bearer(token), timeout=10
    )
    return reply


@pytest.fixture(scope="package")
def create_p1() -> rpc.CreateCarePlanRequest:
    """The request that created p-0001's plan (a repeat must be this exact request)."""
    return rpc.CreateCarePlanRequest(
        parent="patients/p-0001", care_plan=initial_plan(), request_id="api-p1"
    )


@pytest.fixture(scope="package")
def plan_p1(
    stub: rpc_grpc.CarePlanServiceStub, users: Users, create_p1: rpc.CreateCarePlanRequest
) -> pb.CarePlan:
    created: pb.CarePlan = stub.CreateCarePlan(create_p1, metadata=bearer(users.gp), timeout=10)
    current = get(stub, users.patient)
    del current.informal_carers[:]
    current.informal_carers.add(user=users.carer_sub, display_name="Buurvrouw")
    update(stub, users.patient, current, "informal_carers")
    return created

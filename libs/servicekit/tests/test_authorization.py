"""identity's refusals as services pass them on: a fixed message per reason, and a patient
identity does not know refused exactly like one without a care relationship.

identity is a fake here (a unit test): a real gRPC server in this process that answers
NOT_FOUND, the old PATIENT_NOT_FOUND deny, or a NO_CARE_RELATIONSHIP deny.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from servicekit.auth import Principal
from servicekit.authorization import (
    Access,
    AccessRefused,
    Category,
    Decision,
    IdentityAuthorizer,
    refusal,
    require,
)
from servicekit.errors import to_status

DOMAIN = "test.carenet"
GP = Principal(
    subject="dr-jansen",
    client_id="carenet-kis",
    organisation="organisations/gp-de-linde",
    care_group="organisations/cg-zuidoost",
    roles=frozenset({"gp"}),
)


def _answer(patient: str) -> tuple[pb.Decision.ValueType, str]:
    if patient == "patients/p-unrelated":
        return pb.DECISION_DENY, "NO_CARE_RELATIONSHIP"
    if patient == "patients/p-legacy-unknown":
        return pb.DECISION_DENY, "PATIENT_NOT_FOUND"
    return pb.DECISION_PERMIT, "CARE_RELATIONSHIP"


class FakeIdentity(rpc_grpc.IdentityServiceServicer):
    def Authorize(  # noqa: N802 - the generated method name
        self, request: rpc.AuthorizeRequest, context: grpc.ServicerContext
    ) -> rpc.AuthorizeResponse:
        if request.patient in ("patients/p-unknown", "patients/not a name"):
            context.abort(
                grpc.StatusCode.NOT_FOUND
                if request.patient == "patients/p-unknown"
                else grpc.StatusCode.INVALID_ARGUMENT,
                "patient not found",
            )
        decision, reason = _answer(request.patient)
        return rpc.AuthorizeResponse(decision=decision, reason=reason)

    def BatchAuthorize(  # noqa: N802 - the generated method name
        self, request: rpc.BatchAuthorizeRequest, context: grpc.ServicerContext
    ) -> rpc.BatchAuthorizeResponse:
        reply = rpc.BatchAuthorizeResponse()
        for patient in request.patients:
            decision, reason = _answer(patient)
            reply.decisions.add(patient=patient, decision=decision, reason=reason)
        return reply


@pytest.fixture(scope="module")
def authorizer() -> Iterator[IdentityAuthorizer]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    rpc_grpc.add_IdentityServiceServicer_to_server(FakeIdentity(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield IdentityAuthorizer(channel, deadline_seconds=5)
    server.stop(0)


def test_an_unknown_patient_is_refused_exactly_like_one_without_a_care_relationship(
    authorizer: IdentityAuthorizer,
) -> None:
    statuses = set()
    for patient in ("p-unrelated", "p-unknown", "p-legacy-unknown", "not a name"):
        decision = authorizer.authorize(GP, patient, Category.CARE_PLAN, Access.READ)
        assert not decision.permitted
        assert decision.found  # nothing tells the two apart any more
        statuses.add(to_status(refusal(decision), DOMAIN).SerializeToString(deterministic=True))
    assert len(statuses) == 1
    (status,) = statuses
    assert b"NO_CARE_RELATIONSHIP" in status
    assert b"p-un" not in status and b"p-legacy" not in status


def test_batch_decisions_refuse_unknown_patients_like_unrelated_ones(
    authorizer: IdentityAuthorizer,
) -> None:
    decisions = authorizer.batch_authorize(
        GP, ["p-unrelated", "p-legacy-unknown", "p-0001"], Category.MEASUREMENTS, Access.READ
    )
    assert decisions["p-unrelated"] == decisions["p-legacy-unknown"]
    assert decisions["p-unrelated"].reason == "NO_CARE_RELATIONSHIP"
    assert decisions["p-0001"].permitted


@pytest.mark.parametrize(
    "reason",
    ["NO_CARE_RELATIONSHIP", "NO_CONSENT", "NOT_OWN_DATA", "INSURER_NO_PATIENT_DATA", "NEW_ONE"],
)
def test_a_refusal_is_permission_denied_with_identitys_reason_and_a_fixed_message(
    reason: str,
) -> None:
    error = refusal(Decision(False, reason))
    assert isinstance(error, AccessRefused)
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    assert error.reason == reason
    assert error.message == refusal(Decision(False, reason, basis="x")).message
    assert "patient" in error.message or "data" in error.message


@pytest.mark.parametrize("reason", ["", "no consent for p-0001", "X" * 65])
def test_a_reason_that_is_not_an_upper_snake_word_is_not_passed_on(reason: str) -> None:
    error = refusal(Decision(False, reason))
    assert error.reason == "ACCESS_DENIED"
    assert "p-0001" not in error.message


def test_require_passes_a_permit_and_raises_a_deny() -> None:
    require(Decision(True, "CARE_RELATIONSHIP"))
    with pytest.raises(AccessRefused):
        require(Decision(False, "NO_CONSENT"))

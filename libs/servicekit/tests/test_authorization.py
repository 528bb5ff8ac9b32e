"""identity's refusals as services pass them on: a fixed message per reason; a question
identity cannot pose (INVALID_ARGUMENT) refused like a patient without a care relationship
and logged for operators; identity's own PERMISSION_DENIED with its reason.

identity is a fake here (a unit test): a real gRPC server in this process that answers a
deny, INVALID_ARGUMENT with a BadRequest, PERMISSION_DENIED with an ErrorInfo, or NOT_FOUND
(which identity no longer answers: not a decision, so never a permit).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

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
    IdentityUnavailable,
    principal_of,
    refusal,
    require,
    subject_of,
)
from servicekit.delegation import Person, as_person
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
    return pb.DECISION_PERMIT, "CARE_RELATIONSHIP"


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, reason: str, field: str) -> None:
    details = [error_details_pb2.ErrorInfo(reason=reason, domain="identity.carenet")]
    if field:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=field, reason=reason)
                ]
            )
        )
    packed = []
    for detail in details:
        any_ = any_pb2.Any()
        any_.Pack(detail)
        packed.append(any_)
    context.abort_with_status(
        rpc_status.to_status(
            status_pb2.Status(code=code.value[0], message="refused", details=packed)
        )
    )


class FakeIdentity(rpc_grpc.IdentityServiceServicer):
    def Authorize(  # noqa: N802 - the generated method name
        self, request: rpc.AuthorizeRequest, context: grpc.ServicerContext
    ) -> rpc.AuthorizeResponse:
        if request.patient == "patients/p-foreign-holder":
            _abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_RECORD_HOLDER", "record_holder"
            )
        if request.patient == "patients/p-context":
            _abort(context, grpc.StatusCode.PERMISSION_DENIED, "CONTEXT_NOT_TRUSTED", "")
        if request.patient == "patients/p-odd-refusal":
            _abort(context, grpc.StatusCode.PERMISSION_DENIED, "SOMETHING_NEW", "")
        if request.patient == "patients/p-not-found":
            context.abort(grpc.StatusCode.NOT_FOUND, "patient not found")
        decision, reason = _answer(request.patient)
        return rpc.AuthorizeResponse(decision=decision, reason=reason)

    def BatchAuthorize(  # noqa: N802 - the generated method name
        self, request: rpc.BatchAuthorizeRequest, context: grpc.ServicerContext
    ) -> rpc.BatchAuthorizeResponse:
        if "patients/p-foreign-holder" in request.patients:
            _abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_RECORD_HOLDER", "record_holder"
            )
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


def test_a_question_identity_cannot_pose_is_refused_like_an_unseen_patient_and_logged(
    authorizer: IdentityAuthorizer, caplog: pytest.LogCaptureFixture
) -> None:
    """INVALID_ARGUMENT from identity (here UNKNOWN_RECORD_HOLDER) is a fault of the asking
    service: fail closed with the answer for a patient the caller may not see, and a WARNING
    naming identity's reason and field, never the patient."""
    unrelated = authorizer.authorize(GP, "p-unrelated", Category.MEASUREMENTS, Access.READ)
    with caplog.at_level(logging.WARNING, logger="servicekit.authorization"):
        foreign = authorizer.authorize(
            GP, "p-foreign-holder", Category.MEASUREMENTS, Access.READ, record_holder_id="x"
        )
    assert foreign == Decision(False, "NO_CARE_RELATIONSHIP")
    assert to_status(refusal(foreign), DOMAIN) == to_status(refusal(unrelated), DOMAIN)
    (record,) = [r for r in caplog.records if r.getMessage() == "authorize_question_invalid"]
    assert record.levelno == logging.WARNING
    assert (record.identity_reason, record.fields) == ("UNKNOWN_RECORD_HOLDER", ["record_holder"])  # type: ignore[attr-defined]
    assert "p-foreign-holder" not in str(record.__dict__)


def test_a_batch_identity_cannot_pose_refuses_every_patient_of_it_alike(
    authorizer: IdentityAuthorizer,
) -> None:
    decisions = authorizer.batch_authorize(
        GP, ["p-0001", "p-foreign-holder"], Category.MEASUREMENTS, Access.READ
    )
    assert set(decisions.values()) == {Decision(False, "NO_CARE_RELATIONSHIP")}


@pytest.mark.parametrize(
    ("patient", "reason"),
    [("p-context", "CONTEXT_NOT_TRUSTED"), ("p-odd-refusal", "IDENTITY_REFUSED")],
)
def test_identitys_refusal_to_decide_keeps_its_known_reason(
    authorizer: IdentityAuthorizer, patient: str, reason: str
) -> None:
    decision = authorizer.authorize(GP, patient, Category.REFERRAL, Access.READ)
    assert decision == Decision(False, reason)
    assert refusal(decision).message != "access to this patient's data was refused"


def test_an_answer_that_is_no_decision_is_never_a_permit(authorizer: IdentityAuthorizer) -> None:
    with pytest.raises(IdentityUnavailable):
        authorizer.authorize(GP, "p-not-found", Category.CARE_PLAN, Access.READ)


def test_a_delegated_subject_is_sent_with_the_tokens_roles_and_the_person() -> None:
    """identity decides a delegated call from its own directory: the subject carries the
    client's own roles (delegate) and the person named, never the roles a service resolved."""
    kis = Principal(
        subject="kis-account",
        client_id="carenet-kis",
        organisation="organisations/gp-de-linde",
        care_group="organisations/cg-zuidoost",
        roles=frozenset({"delegate"}),
        on_behalf_of="dr-jansen",
    )
    acting = as_person(
        kis,
        Person(
            "dr-jansen",
            frozenset({"gp"}),
            "organisations/gp-de-linde",
            "organisations/cg-zuidoost",
        ),
    )
    assert acting.roles == {"gp"} and acting.has_role("gp")
    subject = subject_of(acting)
    assert (list(subject.roles), subject.on_behalf_of, subject.user) == (
        ["delegate"],
        "dr-jansen",
        "kis-account",
    )
    # identity reads the subject back as the delegate naming the person, not as the person.
    assert principal_of(subject) == kis


def test_a_subject_is_read_back_as_the_principal_it_was_made_of() -> None:
    patient = Principal(
        subject="p-1",
        client_id="carenet-portal",
        organisation="",
        care_group="organisations/cg-zuidoost",
        roles=frozenset({"patient"}),
        patient="patients/p-1",
    )
    for principal in (GP, patient):
        assert principal_of(subject_of(principal)) == principal


@pytest.mark.parametrize(
    "reason",
    [
        "NO_CARE_RELATIONSHIP",
        "NO_CONSENT",
        "NOT_OWN_DATA",
        "INSURER_NO_PATIENT_DATA",
        "ON_BEHALF_OF_NOT_ALLOWED",
        "RECORD_HOLDER_REQUIRED",
        "EMERGENCY_NOT_PERMITTED",
        "EMERGENCY_REASON_INSUFFICIENT",
        "NOT_RELATIONSHIP_MANAGER",
        "CONTEXT_NOT_TRUSTED",
        "NEW_ONE",
    ],
)
def test_a_refusal_is_permission_denied_with_identitys_reason_and_a_fixed_message(
    reason: str,
) -> None:
    error = refusal(Decision(False, reason))
    assert isinstance(error, AccessRefused)
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    assert error.reason == reason
    assert error.message == refusal(Decision(False, reason, basis="x")).message
    generic = "access to this patient's data was refused"
    assert (error.message == generic) == (reason == "NEW_ONE")


def test_every_reason_identity_gives_has_a_message_of_its_own() -> None:
    reasons = [
        "ON_BEHALF_OF_NOT_ALLOWED",
        "RECORD_HOLDER_REQUIRED",
        "EMERGENCY_NOT_PERMITTED",
        "EMERGENCY_REASON_INSUFFICIENT",
        "NOT_RELATIONSHIP_MANAGER",
        "CONTEXT_NOT_TRUSTED",
    ]
    generic = refusal(Decision(False, "NEW_ONE")).message
    messages = {refusal(Decision(False, r)).message for r in reasons}
    assert generic not in messages
    assert len(messages) == len(reasons)


@pytest.mark.parametrize("reason", ["", "no consent for p-0001", "X" * 65])
def test_a_reason_that_is_not_an_upper_snake_word_is_not_passed_on(reason: str) -> None:
    error = refusal(Decision(False, reason))
    assert error.reason == "ACCESS_DENIED"
    assert "p-0001" not in error.message


def test_require_passes_a_permit_and_raises_a_deny() -> None:
    require(Decision(True, "CARE_RELATIONSHIP"))
    with pytest.raises(AccessRefused):
        require(Decision(False, "NO_CONSENT"))


def test_batch_decisions_pass_identitys_answers_on(authorizer: IdentityAuthorizer) -> None:
    decisions = authorizer.batch_authorize(
        GP, ["p-unrelated", "p-0001"], Category.MEASUREMENTS, Access.READ
    )
    unrelated = decisions["p-unrelated"]
    assert (unrelated.permitted, unrelated.reason) == (False, "NO_CARE_RELATIONSHIP")
    assert decisions["p-0001"].permitted

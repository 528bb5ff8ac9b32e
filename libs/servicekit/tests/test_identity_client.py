"""servicekit.identity_client: the one identity client. Its gRPC side sends the question a
service asks, with the client's data category, to a real gRPC server in this process (a
fake identity: a unit test) and reads the answers back; testkit's FakeIdentity answers as
identity does."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from servicekit.auth import Principal
from servicekit.identity_client import (
    Access,
    AccessDecision,
    AccessQuestion,
    BatchAccessQuestion,
    Category,
    GrpcIdentityClient,
    IdentityClient,
    IdentityUnavailable,
    ReferralContext,
)
from testkit.fakes import FakeIdentity

GP = Principal(
    subject="dr-jansen",
    client_id="carenet-kis",
    organisation="organisations/gp-de-linde",
    care_group="organisations/cg-zuidoost",
    roles=frozenset({"gp"}),
)


class Recorder(rpc_grpc.IdentityServiceServicer):
    def __init__(self) -> None:
        self.asked: list[rpc.AuthorizeRequest] = []
        self.batches: list[rpc.BatchAuthorizeRequest] = []

    def Authorize(  # noqa: N802 - the generated method name
        self, request: rpc.AuthorizeRequest, context: grpc.ServicerContext
    ) -> rpc.AuthorizeResponse:
        self.asked.append(request)
        if request.patient == "patients/p-2":
            return rpc.AuthorizeResponse(decision=pb.DECISION_DENY, reason="NO_CONSENT")
        return rpc.AuthorizeResponse(
            decision=pb.DECISION_PERMIT,
            reason="CARE_RELATIONSHIP",
            basis=pb.BASIS_CARE_RELATIONSHIP,
        )

    def BatchAuthorize(  # noqa: N802 - the generated method name
        self, request: rpc.BatchAuthorizeRequest, context: grpc.ServicerContext
    ) -> rpc.BatchAuthorizeResponse:
        self.batches.append(request)
        return rpc.BatchAuthorizeResponse(
            decisions=[
                rpc.PatientDecision(patient=p, decision=pb.DECISION_PERMIT, reason="OK")
                for p in request.patients
                if p != "patients/p-2"
            ]
        )


@pytest.fixture
def identity() -> Iterator[tuple[Recorder, grpc.Channel]]:
    recorder = Recorder()  # type: ignore[abstract]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    rpc_grpc.add_IdentityServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield recorder, channel
    finally:
        channel.close()
        server.stop(0).wait()


def test_the_grpc_client_asks_with_its_category_and_the_whole_question(
    identity: tuple[Recorder, grpc.Channel],
) -> None:
    recorder, channel = identity
    client: IdentityClient = GrpcIdentityClient(channel, Category.REFERRAL, deadline_seconds=2)
    context = ReferralContext("patients/p-1/referrals/r-1", "beweeg-fit", "gp-de-linde")
    decision = client.authorize(
        AccessQuestion(GP, "p-1", Access.UPDATE, "gp-de-linde", "referral", context)
    )
    assert decision == AccessDecision(True, "CARE_RELATIONSHIP", "care-relationship")
    asked = recorder.asked[-1]
    assert (asked.patient, asked.data_category, asked.action) == (
        "patients/p-1",
        pb.DATA_CATEGORY_REFERRAL,
        pb.ACTION_UPDATE,
    )
    assert (asked.record_holder, asked.purpose) == ("organisations/gp-de-linde", "referral")
    assert asked.referral_context.target_organisation == "organisations/beweeg-fit"
    assert asked.subject.user == "dr-jansen" and asked.access_point == "carenet-kis"

    refused = GrpcIdentityClient(channel, Category.CARE_PLAN).authorize(
        AccessQuestion(GP, "p-2", Access.READ)
    )
    assert (refused.permitted, refused.reason) == (False, "NO_CONSENT")
    assert recorder.asked[-1].data_category == pb.DATA_CATEGORY_CARE_PLAN
    assert not recorder.asked[-1].HasField("referral_context")
    assert recorder.asked[-1].record_holder == ""


def test_a_batch_is_one_decision_per_distinct_patient_and_unanswered_is_refused(
    identity: tuple[Recorder, grpc.Channel],
) -> None:
    recorder, channel = identity
    client = GrpcIdentityClient(channel, Category.MEASUREMENTS)
    decisions = client.authorize_many(
        BatchAccessQuestion(GP, ["p-1", "p-2", "p-1"], Access.CREATE, "enrolment")
    )
    assert {p: (d.permitted, d.reason) for p, d in decisions.items()} == {
        "p-1": (True, "OK"),
        "p-2": (False, "NO_DECISION"),
    }
    sent = recorder.batches[-1]
    assert list(sent.patients) == ["patients/p-1", "patients/p-2"]
    assert (sent.data_category, sent.action, sent.purpose) == (
        pb.DATA_CATEGORY_MEASUREMENTS,
        pb.ACTION_CREATE,
        "enrolment",
    )
    assert sent.record_holder == ""  # the subject's own organisation's records


def test_a_batch_names_its_record_holder_in_one_request(
    identity: tuple[Recorder, grpc.Channel],
) -> None:
    """A read or update of measurements names the organisation that holds them: the batch
    carries it, so many patients are still one request (not one Authorize each)."""
    recorder, channel = identity
    client = GrpcIdentityClient(channel, Category.MEASUREMENTS)
    patients = [f"p-{i}" for i in range(3, 1203)]
    decisions = client.authorize_many(
        BatchAccessQuestion(GP, patients, Access.READ, "measurements", "gp-de-linde")
    )
    assert all(d.permitted for d in decisions.values()) and len(decisions) == 1200
    assert recorder.asked == []
    assert [len(b.patients) for b in recorder.batches] == [1000, 200]
    assert {(b.record_holder, b.action, b.purpose) for b in recorder.batches} == {
        ("organisations/gp-de-linde", pb.ACTION_READ, "measurements")
    }


def test_identity_unreachable_is_unavailable_never_a_permit() -> None:
    channel = grpc.insecure_channel("127.0.0.1:9")  # nothing listens on the discard port
    client = GrpcIdentityClient(channel, Category.REFERRAL, deadline_seconds=0.3)
    with pytest.raises(IdentityUnavailable):
        client.authorize(AccessQuestion(GP, "p-1", Access.READ))
    with pytest.raises(IdentityUnavailable):
        client.authorize_many(BatchAccessQuestion(GP, ["p-1"], Access.READ))
    channel.close()


def test_the_fake_answers_as_identity_does_and_records_the_questions() -> None:
    fake = FakeIdentity(unknown={"p-ghost"}, deny={"dr-other": "NO_CONSENT"})
    client: IdentityClient = fake
    assert client.authorize(AccessQuestion(GP, "p-1", Access.READ)).permitted
    assert client.authorize(AccessQuestion(GP, "p-ghost", Access.READ)) == AccessDecision(
        False, "NO_CARE_RELATIONSHIP"
    )
    other = Principal("dr-other", "kis", "organisations/x", "organisations/cg", frozenset({"gp"}))
    assert client.authorize(AccessQuestion(other, "p-1", Access.READ)).reason == "NO_CONSENT"
    assert [q.patient_id for q in fake.questions] == ["p-1", "p-ghost", "p-1"]

    only = FakeIdentity(permitted={"p-1"}, holders={"p-1": {"gp-de-linde"}}, read_only={"p-1"})
    assert only.authorize(AccessQuestion(GP, "p-1", Access.READ)).permitted
    assert not only.authorize(AccessQuestion(GP, "p-1", Access.READ, "elsewhere")).permitted
    assert not only.authorize(AccessQuestion(GP, "p-1", Access.UPDATE)).permitted
    assert not only.authorize(AccessQuestion(GP, "p-3", Access.READ)).permitted
    many = only.authorize_many(BatchAccessQuestion(GP, ["p-1", "p-3", "p-1"], Access.READ))
    assert {p: d.permitted for p, d in many.items()} == {"p-1": True, "p-3": False}
    assert only.asked_patients[-2:] == ["p-1", "p-3"]

    custom = FakeIdentity(decide=lambda q: AccessDecision(False, "X") if q.purpose else None)
    assert not custom.authorize(AccessQuestion(GP, "p-1", Access.READ, purpose="p")).permitted
    assert custom.authorize(AccessQuestion(GP, "p-1", Access.READ)).permitted

    down = FakeIdentity(unavailable=True)
    with pytest.raises(IdentityUnavailable):
        down.authorize(AccessQuestion(GP, "p-1", Access.READ))
    with pytest.raises(IdentityUnavailable):
        down.authorize_many(BatchAccessQuestion(GP, ["p-1"], Access.READ))

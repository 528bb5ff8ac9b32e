"""The identity fixture: identity as its own process, patients registered through its API,
and a clinician of the registering practice then permitted by its Authorize."""

from __future__ import annotations

import grpc

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from testkit.fixtures import IdentityService, Tokens, bearer, valid_bsn


def test_bsns_pass_the_eleven_test() -> None:
    for n in (0, 1, 77):
        digits = [int(d) for d in valid_bsn(n)]
        weights = [9, 8, 7, 6, 5, 4, 3, 2, -1]
        assert sum(d * w for d, w in zip(digits, weights, strict=True)) % 11 == 0
    assert valid_bsn(1) != valid_bsn(2)


def test_identity_runs_as_a_process_and_registers_patients(
    identity_service: IdentityService, tokens: Tokens
) -> None:
    assert identity_service.process is not None
    assert identity_service.process.process is not None
    assert identity_service.process.process.poll() is None  # a process of its own
    gp = tokens.user("dr.jansen")
    name = identity_service.register_patient(gp, "p-testkit-1", valid_bsn(4242, 700_000_000))
    assert name == "patients/p-testkit-1"
    again = identity_service.register_patient(gp, "p-testkit-1", valid_bsn(4242, 700_000_000))
    assert again == name  # the same request_id: the first result
    with grpc.insecure_channel(identity_service.target) as channel:
        decision = rpc_grpc.IdentityServiceStub(channel).Authorize(
            rpc.AuthorizeRequest(
                patient=name,
                data_category=pb.DATA_CATEGORY_CARE_PLAN,
                action=pb.ACTION_READ,
                purpose="care",
            ),
            metadata=bearer(gp),
            timeout=10,
        )
    assert decision.decision == pb.DECISION_PERMIT

"""Consent decides: when the patient withdraws care-plan consent for hospitals, the
hospital's next read is denied, and the denial is in the patient's access log."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from carenet.careplan.v1 import careplan_pb2 as pb
from carenet.careplan.v1 import careplan_service_pb2 as rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as rpc_grpc
from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from testkit.fixtures import bearer
from testkit.rpc import failure

from .conftest import P1, Users, get


def _hospital_care_plan_consents(
    identity: id_grpc.IdentityServiceStub, token: str
) -> list[id_pb.Consent]:
    reply = identity.ListConsents(
        id_rpc.ListConsentsRequest(parent="patients/p-0001", page_size=100),
        metadata=bearer(token),
        timeout=10,
    )
    return [
        c
        for c in reply.consents
        if c.data_category == id_pb.DATA_CATEGORY_CARE_PLAN
        and c.requester.category == id_pb.ORGANISATION_TYPE_HOSPITAL
        and c.state == id_pb.CONSENT_STATE_ACTIVE
    ]


@pytest.fixture
def withdrawn(identity_stub: id_grpc.IdentityServiceStub, users: Users) -> Iterator[None]:
    """Withdraws the hospital consent as pat.dewit; gives it again afterwards."""
    consents = _hospital_care_plan_consents(identity_stub, users.patient)
    assert consents, "the demo region lets hospitals read p-0001's care plan"
    for consent in consents:
        identity_stub.WithdrawConsent(
            id_rpc.WithdrawConsentRequest(name=consent.name, etag=consent.etag),
            metadata=bearer(users.patient),
            timeout=10,
        )
    yield
    again = id_pb.Consent(
        data_category=id_pb.DATA_CATEGORY_CARE_PLAN,
        record_holder=id_pb.OrganisationSelector(category=id_pb.ORGANISATION_TYPE_GP_PRACTICE),
        requester=id_pb.OrganisationSelector(category=id_pb.ORGANISATION_TYPE_HOSPITAL),
    )
    identity_stub.CreateConsent(
        id_rpc.CreateConsentRequest(parent="patients/p-0001", consent=again),
        metadata=bearer(users.patient),
        timeout=10,
    )


def test_withdrawn_consent_denies_the_hospitals_next_read_and_logs_it(
    stub: rpc_grpc.CarePlanServiceStub,
    identity_stub: id_grpc.IdentityServiceStub,
    users: Users,
    plan_p1: pb.CarePlan,
    request: pytest.FixtureRequest,
) -> None:
    assert get(stub, users.specialist).name == P1
    request.getfixturevalue("withdrawn")
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCarePlan(
            rpc.GetCarePlanRequest(name=P1), metadata=bearer(users.specialist), timeout=10
        )
    fail = failure(caught.value)
    assert (fail.code, fail.reason, fail.domain) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NO_CONSENT",
        "careplan.carenet",
    )
    entries: list[id_pb.AccessLogEntry] = []
    token = ""
    while True:
        page = identity_stub.ListAccessLogEntries(
            id_rpc.ListAccessLogEntriesRequest(
                patient="patients/p-0001", page_size=1000, page_token=token
            ),
            metadata=bearer(users.patient),
            timeout=10,
        )
        entries.extend(page.access_log_entries)
        token = page.next_page_token
        if not token:
            break
    last = [
        e
        for e in entries
        if e.organisation == "organisations/hosp-catharina"
        and e.data_category == id_pb.DATA_CATEGORY_CARE_PLAN
    ][-1]
    assert (last.decision, last.reason, last.action) == (
        id_pb.DECISION_DENY,
        "NO_CONSENT",
        id_pb.ACTION_READ,
    )
    assert last.access_point == "carenet-kis"

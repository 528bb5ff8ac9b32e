"""Helpers for the API tests: identity's access log around a call, and patients registered in
the real identity service through its API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from carenet.identity.v1 import identity_pb2 as id_pb
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as id_grpc
from testkit.fixtures import IdentityService, Tokens, bearer, valid_bsn


def care_plan_entries(
    identity: id_grpc.IdentityServiceStub, token: str, patient: str
) -> dict[str, id_pb.AccessLogEntry]:
    """Every access-log entry about the patient's care-plan data, by name (read as the
    auditor: reading the log is logged too, under its own data category)."""
    found: dict[str, id_pb.AccessLogEntry] = {}
    page_token = ""
    while True:
        page = identity.ListAccessLogEntries(
            id_rpc.ListAccessLogEntriesRequest(
                patient=patient, page_size=1000, page_token=page_token
            ),
            metadata=bearer(token),
            timeout=10,
        )
        for entry in page.access_log_entries:
            if entry.data_category == id_pb.DATA_CATEGORY_CARE_PLAN:
                found[entry.name] = entry
        page_token = page.next_page_token
        if not page_token:
            return found


@dataclass(frozen=True)
class Logged:
    """A call's outcome and the care-plan entries identity wrote while it ran."""

    result: Any
    error: grpc.RpcError | None
    entries: list[id_pb.AccessLogEntry]


@dataclass(frozen=True)
class AccessLog:
    identity: id_grpc.IdentityServiceStub
    auditor: str

    def around(self, patient: str, call: Callable[[], Any]) -> Logged:
        """Runs ``call`` and returns the patient's care-plan entries it caused."""
        before = care_plan_entries(self.identity, self.auditor, patient)
        result, error = None, None
        try:
            result = call()
        except grpc.RpcError as caught:
            error = caught
        after = care_plan_entries(self.identity, self.auditor, patient)
        new = sorted(after.keys() - before.keys(), key=lambda name: after[name].sequence)
        return Logged(result, error, [after[name] for name in new])


# A clinician of each practice, who registers its test patients (identity then gives the
# practice the coordinating care relationship).
CLINICIANS = {"gp-de-linde": "dr.jansen", "gp-het-anker": "dr.devries"}


def register_patient(
    identity: IdentityService, tokens: Tokens, patient_id: str, n: int, practice: str
) -> str:
    """Registers a patient at ``practice`` through identity's API, as the demo region is
    seeded (the BSN goes to identity, never to careplan)."""
    return identity.register_patient(tokens.user(CLINICIANS[practice]), patient_id, valid_bsn(n))


def relate(
    identity: id_grpc.IdentityServiceStub,
    token: str,
    patient: str,
    organisation: str,
    kind: id_pb.CareRelationshipKind.ValueType,
) -> None:
    """``organisation`` gets a care relationship of ``kind`` with ``patient``, created
    through identity's API as the caller of ``token``."""
    identity.CreateCareRelationship(
        id_rpc.CreateCareRelationshipRequest(
            parent=patient,
            care_relationship=id_pb.CareRelationship(organisation=organisation, kind=kind),
        ),
        metadata=bearer(token),
        timeout=10,
    )

"""No answer of identity tells whether a patient exists: on every RPC that takes a patient, a
patient who exists but whom the caller may not see, a patient of another care group and a
patient who does not exist give the same error (code, message, ErrorInfo reason, domain and
metadata); Authorize and BatchAuthorize give the same decision, with a log entry each time."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.models import OrganisationType
from identity.use_cases import organisations, patients
from identity.use_cases.deps import Deps
from servicekit.principals import care_group_admin
from testkit.fixtures import OTHER_TENANT, IdentityService, Tokens, bearer

from .calls import FullError, fails

Stub = rpc_grpc.IdentityServiceStub
INVISIBLE_BSN = "999990019"  # p-0003, whose only relationship is with gp-het-anker


def _bsn(seed: int) -> str:
    base = 200_000_000 + seed % 700_000_000
    while True:
        digits = f"{base:09d}"
        total = sum(w * int(d) for w, d in zip((9, 8, 7, 6, 5, 4, 3, 2), digits[:8], strict=True))
        if (total - int(digits[8])) % 11 == 0:
            return digits
        base += 1


@dataclass(frozen=True)
class Target:
    """A patient as the RPCs name it, with a consent and a relationship of theirs."""

    patient: str
    consent: str
    relationship: str
    bsn: str


@pytest.fixture(scope="module")
def targets(identity_service: IdentityService, stub: Stub, tokens: Tokens) -> dict[str, Target]:
    """p-0003 (exists, invisible to the callers below), a patient of another care group, and
    a patient who does not exist."""
    coordinator = bearer(tokens.user("dr.devries"))
    consent = stub.CreateConsent(
        rpc.CreateConsentRequest(
            parent="patients/p-0003",
            consent=pb.Consent(
                record_holder=pb.OrganisationSelector(category=pb.ORGANISATION_TYPE_GP_PRACTICE),
                data_category=pb.DATA_CATEGORY_CARE_PLAN,
                requester=pb.OrganisationSelector(category=pb.ORGANISATION_TYPE_HOSPITAL),
            ),
        ),
        metadata=coordinator,
        timeout=10,
    )
    (relationship,) = stub.ListCareRelationships(
        rpc.ListCareRelationshipsRequest(parent="patients/p-0003"),
        metadata=coordinator,
        timeout=10,
    ).care_relationships
    deps: Deps = identity_service.deps
    organisations.bootstrap_care_group(
        deps,
        OTHER_TENANT,
        organisations.OrganisationInput("Zorggroep Noord", OrganisationType.CARE_GROUP),
    )
    noord_admin = care_group_admin(OTHER_TENANT, "existence-noord-admin", client_id="test")
    run = uuid.uuid4().hex[:8]
    noord_bsn = _bsn(int(run, 16))
    foreign = patients.register_patient(deps, noord_admin, noord_bsn, f"noord-{run}")
    return {
        "invisible": Target("patients/p-0003", consent.name, relationship.name, INVISIBLE_BSN),
        "other-tenant": Target(
            f"patients/{foreign.id}",
            f"patients/{foreign.id}/consents/c{run}",
            f"patients/{foreign.id}/careRelationships/r{run}",
            noord_bsn,
        ),
        "nonexistent": Target(
            f"patients/nobody-{run}",
            f"patients/nobody-{run}/consents/c{run}",
            f"patients/nobody-{run}/careRelationships/r{run}",
            _bsn(int(run, 16) + 7),
        ),
    }


def _consent_message() -> pb.Consent:
    return pb.Consent(
        record_holder=pb.OrganisationSelector(category=pb.ORGANISATION_TYPE_GP_PRACTICE),
        data_category=pb.DATA_CATEGORY_MEASUREMENTS,
        requester=pb.OrganisationSelector(category=pb.ORGANISATION_TYPE_HOSPITAL),
    )


# Every RPC of identity that takes a patient, as (method name, request for a target).
RPCS: list[tuple[str, Callable[[Target], Any]]] = [
    ("GetPatient", lambda t: rpc.GetPatientRequest(name=t.patient)),
    ("LookupPatient", lambda t: rpc.LookupPatientRequest(bsn=t.bsn, purpose="intake")),
    ("ListCareRelationships", lambda t: rpc.ListCareRelationshipsRequest(parent=t.patient)),
    (
        "CreateCareRelationship",
        lambda t: rpc.CreateCareRelationshipRequest(
            parent=t.patient,
            care_relationship=pb.CareRelationship(
                organisation="organisations/gp-het-anker",
                kind=pb.CARE_RELATIONSHIP_KIND_TREATING,
            ),
        ),
    ),
    ("EndCareRelationship", lambda t: rpc.EndCareRelationshipRequest(name=t.relationship)),
    (
        "CreateConsent",
        lambda t: rpc.CreateConsentRequest(parent=t.patient, consent=_consent_message()),
    ),
    ("GetConsent", lambda t: rpc.GetConsentRequest(name=t.consent)),
    ("ListConsents", lambda t: rpc.ListConsentsRequest(parent=t.patient)),
    ("WithdrawConsent", lambda t: rpc.WithdrawConsentRequest(name=t.consent)),
    ("ListConsentEvents", lambda t: rpc.ListConsentEventsRequest(parent=t.patient)),
    ("ListAccessLogEntries", lambda t: rpc.ListAccessLogEntriesRequest(patient=t.patient)),
]
# Callers to whom p-0003 is invisible: another organisation's clinician, a lifestyle provider,
# a municipality officer, an insurer analyst, another patient.
CALLERS = ["dr.smit", "coach.degroot", "ambtenaar.mulder", "analist.peters", "pat.dewit"]


def _token(tokens: Tokens, username: str) -> str:
    return tokens.patient(username) if username.startswith("pat.") else tokens.user(username)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "build"), RPCS, ids=[name for name, _ in RPCS])
def test_a_patient_the_caller_may_not_see_fails_exactly_like_one_that_does_not_exist(
    stub: Stub,
    tokens: Tokens,
    targets: dict[str, Target],
    caller: str,
    method: str,
    build: Callable[[Target], Any],
) -> None:
    metadata = bearer(_token(tokens, caller))
    call = getattr(stub, method)
    errors: dict[str, FullError] = {
        name: fails(call, build(target), metadata) for name, target in targets.items()
    }
    invisible = errors["invisible"]
    assert invisible.code == grpc.StatusCode.PERMISSION_DENIED
    assert len(invisible.error_infos) == 1
    assert invisible.error_infos[0][1] == "identity.carenet"
    assert errors["nonexistent"] == invisible
    assert errors["other-tenant"] == invisible


def test_the_invisible_patient_is_real_and_visible_to_its_own_practice(
    stub: Stub, tokens: Tokens, targets: dict[str, Target]
) -> None:
    """The comparison above is between a real patient and none, not between two failures."""
    coordinator = bearer(tokens.user("dr.devries"))
    patient = stub.GetPatient(
        rpc.GetPatientRequest(name=targets["invisible"].patient), metadata=coordinator, timeout=5
    )
    assert patient.name == "patients/p-0003"
    consent = stub.GetConsent(
        rpc.GetConsentRequest(name=targets["invisible"].consent), metadata=coordinator, timeout=5
    )
    assert consent.name == targets["invisible"].consent
    # For a caller who may see the patient's consents, a missing consent is NOT_FOUND.
    missing = fails(
        stub.GetConsent,
        rpc.GetConsentRequest(name="patients/p-0003/consents/none-such"),
        coordinator,
    )
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "CONSENT_NOT_FOUND")


@pytest.mark.parametrize("caller", ["dr.smit", "coach.degroot", "analist.peters", "pat.dewit"])
def test_authorize_answers_an_unknown_patient_like_one_without_a_relationship(
    stub: Stub, tokens: Tokens, targets: dict[str, Target], caller: str
) -> None:
    metadata = bearer(_token(tokens, caller))
    replies = {
        name: stub.Authorize(
            rpc.AuthorizeRequest(
                patient=target.patient,
                data_category=pb.DATA_CATEGORY_CARE_PLAN,
                action=pb.ACTION_READ,
                record_holder="organisations/gp-het-anker",
                purpose="probe",
            ),
            metadata=metadata,
            timeout=5,
        )
        for name, target in targets.items()
    }
    for reply in replies.values():
        assert reply.decision == pb.DECISION_DENY
        assert reply.access_log_entry.startswith("accessLogEntries/")

    def answer(reply: rpc.AuthorizeResponse) -> tuple[object, ...]:
        return (reply.decision, reply.basis, reply.reason, reply.emergency, reply.care_group)

    assert answer(replies["nonexistent"]) == answer(replies["invisible"])
    assert answer(replies["other-tenant"]) == answer(replies["invisible"])


def test_batch_authorize_answers_an_unknown_patient_like_one_without_a_relationship(
    stub: Stub, tokens: Tokens, targets: dict[str, Target]
) -> None:
    reply = stub.BatchAuthorize(
        rpc.BatchAuthorizeRequest(
            patients=[t.patient for t in targets.values()],
            data_category=pb.DATA_CATEGORY_MEASUREMENTS,
            action=pb.ACTION_CREATE,
        ),
        metadata=bearer(tokens.user("dr.smit")),
        timeout=5,
    )
    decided = {d.patient: d for d in reply.decisions}
    answers = {
        (decided[t.patient].decision, decided[t.patient].basis, decided[t.patient].reason)
        for t in targets.values()
    }
    assert answers == {(pb.DECISION_DENY, pb.BASIS_UNSPECIFIED, "NO_CARE_RELATIONSHIP")}
    assert all(decided[t.patient].access_log_entry for t in targets.values())

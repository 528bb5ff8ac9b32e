"""``x-carenet-on-behalf-of``: a delegate system client (the demo KIS, registered for
gp-de-linde) may act for an active person of its own organisation, with that person's roles,
and the access log keeps both. Anyone else naming someone is refused: on identity's own RPCs
PERMISSION_DENIED ON_BEHALF_OF_NOT_ALLOWED, in Authorize a logged denial."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from carenet.identity.v1 import identity_pb2 as pb
from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity import people
from servicekit.auth import ON_BEHALF_OF_HEADER
from testkit.fixtures import IdentityService, Tokens, bearer

from .calls import fails, realm, subject_of_user, user_id

Stub = rpc_grpc.IdentityServiceStub


def _read_plan(subject: pb.Subject | None = None, access_point: str = "") -> rpc.AuthorizeRequest:
    return rpc.AuthorizeRequest(
        patient="patients/p-0001",
        data_category=pb.DATA_CATEGORY_CARE_PLAN,
        action=pb.ACTION_READ,
        subject=subject,
        access_point=access_point,
    )


def _kis(tokens: Tokens, person: str | None) -> tuple[tuple[str, str], ...]:
    metadata = bearer(tokens.client("carenet-kis"))
    if person is None:
        return metadata
    return (*metadata, (ON_BEHALF_OF_HEADER, person))


def _entry(stub: Stub, tokens: Tokens, name: str) -> pb.AccessLogEntry:
    """One access-log entry, as the auditor reads it."""
    token = ""
    auditor = bearer(tokens.user("auditor.dekker"))
    while True:
        request = rpc.ListAccessLogEntriesRequest(
            patient="patients/p-0001", page_token=token, page_size=500
        )
        page = stub.ListAccessLogEntries(request, metadata=auditor, timeout=10)
        for entry in page.access_log_entries:
            if entry.name == name:
                return entry
        token = page.next_page_token
        if not token:
            raise AssertionError(f"{name} is not in the log")


def test_the_kis_acting_for_its_own_gp_is_decided_as_that_gp_and_logged_as_both(
    stub: Stub, tokens: Tokens
) -> None:
    # On its own the KIS holds no care role ...
    alone = stub.Authorize(_read_plan(), metadata=_kis(tokens, None), timeout=5)
    assert (alone.decision, alone.reason) == (pb.DECISION_DENY, "ROLE_NOT_PERMITTED")
    # ... acting for dr.jansen it has hers.
    jansen = user_id("dr.jansen")
    reply = stub.Authorize(_read_plan(), metadata=_kis(tokens, jansen), timeout=5)
    assert (reply.decision, reply.reason) == (pb.DECISION_PERMIT, "CARE_RELATIONSHIP")
    entry = _entry(stub, tokens, reply.access_log_entry)
    kis_account = user_id("service-account-carenet-kis")
    assert entry.user == kis_account
    assert entry.responsible_user == jansen
    assert entry.access_point == "carenet-kis"
    assert list(entry.roles) == ["gp"]
    assert entry.organisation == "organisations/gp-de-linde"


def test_a_service_asking_for_the_kis_acting_for_its_gp_gets_the_gps_decision(
    stub: Stub, tokens: Tokens
) -> None:
    subject = subject_of_user("service-account-carenet-kis")
    subject.on_behalf_of = user_id("poh.bakker")
    reply = stub.Authorize(
        _read_plan(subject, "carenet-kis"),
        metadata=bearer(tokens.client("svc-referral")),
        timeout=5,
    )
    assert (reply.decision, reply.reason) == (pb.DECISION_PERMIT, "CARE_RELATIONSHIP")
    entry = _entry(stub, tokens, reply.access_log_entry)
    assert (entry.user, entry.responsible_user) == (subject.user, subject.on_behalf_of)
    assert list(entry.roles) == ["practice-nurse"]


@pytest.mark.parametrize(
    "named",
    [
        "dr.devries",  # a person of another organisation
        "dr.smit",  # another organisation's specialist
        "pat.dewit",  # a patient, not a person of any organisation
        "no-such-person",
    ],
)
def test_a_delegate_naming_someone_outside_its_organisation_is_refused(
    stub: Stub, tokens: Tokens, named: str
) -> None:
    person = user_id(named) if named != "no-such-person" else "8c0e4a36-0000-4000-8000-000000000000"
    # identity's own RPCs refuse the call ...
    fail = fails(
        stub.GetPatient, rpc.GetPatientRequest(name="patients/p-0001"), _kis(tokens, person)
    )
    assert (fail.code, fail.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ON_BEHALF_OF_NOT_ALLOWED",
    )
    assert person not in fail.message
    # ... and Authorize denies, and logs the attempt with both names.
    reply = stub.Authorize(_read_plan(), metadata=_kis(tokens, person), timeout=5)
    assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "ON_BEHALF_OF_NOT_ALLOWED")
    entry = _entry(stub, tokens, reply.access_log_entry)
    assert (entry.user, entry.responsible_user) == (
        user_id("service-account-carenet-kis"),
        person,
    )


def test_the_reported_attack_a_personal_token_naming_a_colleague_is_refused(
    stub: Stub, tokens: Tokens
) -> None:
    """dr.jansen's own token with the header naming dr.devries (issue 11, point 2)."""
    metadata = (*bearer(tokens.user("dr.jansen")), (ON_BEHALF_OF_HEADER, user_id("dr.devries")))
    fail = fails(stub.GetPatient, rpc.GetPatientRequest(name="patients/p-0001"), metadata)
    assert (fail.code, fail.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ON_BEHALF_OF_NOT_ALLOWED",
    )
    # A service passing such a subject on gets a logged denial, never the colleague's access.
    subject = subject_of_user("dr.jansen")
    subject.on_behalf_of = user_id("dr.devries")
    reply = stub.Authorize(
        _read_plan(subject),
        metadata=bearer(tokens.client("svc-referral")),
        timeout=5,
    )
    assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "ON_BEHALF_OF_NOT_ALLOWED")


def test_a_person_deactivated_in_the_directory_can_no_longer_be_acted_for(
    identity_service: IdentityService, stub: Stub, tokens: Tokens
) -> None:
    deps = identity_service.deps
    everyone = people.realm_people(realm())
    nurse = user_id("poh.bakker")
    now = dt.datetime.now(dt.UTC)
    request = rpc.GetPatientRequest(name="patients/p-0001")
    assert stub.GetPatient(request, metadata=_kis(tokens, nurse), timeout=5).name
    report = people.sync_people(deps.uow, [p for p in everyone if p.id != nurse], now)
    try:
        assert report.deactivated == 1
        fail = fails(stub.GetPatient, request, _kis(tokens, nurse))
        assert fail.reason == "ON_BEHALF_OF_NOT_ALLOWED"
    finally:
        people.sync_people(deps.uow, everyone, now)
    assert stub.GetPatient(request, metadata=_kis(tokens, nurse), timeout=5).name


# ------------------------------------------------------------- ResolveDelegation (services)


def _resolve(
    stub: Stub, tokens: Tokens, subject: pb.Subject | None
) -> rpc.ResolveDelegationResponse:
    request = rpc.ResolveDelegationRequest(subject=subject)
    reply: rpc.ResolveDelegationResponse = stub.ResolveDelegation(
        request, metadata=bearer(tokens.client("svc-referral")), timeout=5
    )
    return reply


def _kis_subject(person: str) -> pb.Subject:
    subject = subject_of_user("service-account-carenet-kis")
    subject.client_id = "carenet-kis"
    subject.on_behalf_of = person
    return subject


def test_a_service_resolves_the_person_its_kis_caller_acts_for(stub: Stub, tokens: Tokens) -> None:
    """What servicekit.delegation asks before every delegated call of another service."""
    before = _log_size(stub, tokens)
    reply = _resolve(stub, tokens, _kis_subject(user_id("poh.bakker")))
    assert (reply.person, list(reply.roles), reply.organisation, reply.care_group) == (
        user_id("poh.bakker"),
        ["practice-nurse"],
        "organisations/gp-de-linde",
        "organisations/cg-zuidoost",
    )
    assert _log_size(stub, tokens) == before  # no patient data, nothing logged


@pytest.mark.parametrize(
    "named", ["dr.devries", "dr.smit", "pat.dewit", "service-account-svc-referral", "nobody"]
)
def test_resolving_someone_the_kis_may_not_act_for_is_refused(
    stub: Stub, tokens: Tokens, named: str
) -> None:
    person = user_id(named) if named != "nobody" else "8c0e4a36-0000-4000-8000-000000000000"
    fail = fails(
        stub.ResolveDelegation,
        rpc.ResolveDelegationRequest(subject=_kis_subject(person)),
        bearer(tokens.client("svc-referral")),
    )
    assert (fail.code, fail.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ON_BEHALF_OF_NOT_ALLOWED",
    )
    assert person not in fail.message


def test_identity_decides_on_the_clients_own_roles_not_on_roles_a_service_claims(
    stub: Stub, tokens: Tokens
) -> None:
    """A subject that names a person but carries a person's roles instead of the client's
    ``delegate`` (a personal token, or a service passing resolved roles) is not a delegate."""
    subject = subject_of_user("dr.jansen")
    subject.on_behalf_of = user_id("poh.bakker")
    fail = fails(
        stub.ResolveDelegation,
        rpc.ResolveDelegationRequest(subject=subject),
        bearer(tokens.client("svc-referral")),
    )
    assert fail.reason == "ON_BEHALF_OF_NOT_ALLOWED"
    resolved = _kis_subject(user_id("poh.bakker"))
    del resolved.roles[:]
    resolved.roles.append("practice-nurse")
    reply = stub.Authorize(
        _read_plan(resolved, "carenet-kis"),
        metadata=bearer(tokens.client("svc-referral")),
        timeout=5,
    )
    assert (reply.decision, reply.reason) == (pb.DECISION_DENY, "ON_BEHALF_OF_NOT_ALLOWED")


def test_only_services_resolve_for_someone_else(stub: Stub, tokens: Tokens) -> None:
    fail = fails(
        stub.ResolveDelegation,
        rpc.ResolveDelegationRequest(subject=_kis_subject(user_id("dr.jansen"))),
        bearer(tokens.user("dr.jansen")),
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "SUBJECT_NOT_ALLOWED")


def test_the_kis_resolves_itself_through_its_header(stub: Stub, tokens: Tokens) -> None:
    reply = stub.ResolveDelegation(
        rpc.ResolveDelegationRequest(), metadata=_kis(tokens, user_id("dr.jansen")), timeout=5
    )
    assert (reply.person, list(reply.roles)) == (user_id("dr.jansen"), ["gp"])
    fail = fails(stub.ResolveDelegation, rpc.ResolveDelegationRequest(), _kis(tokens, None))
    assert (fail.code, fail.reason, fail.field_violations[0][0]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "ON_BEHALF_OF_REQUIRED",
        ON_BEHALF_OF_HEADER,
    )


def test_a_deactivated_person_is_not_resolved(
    identity_service: IdentityService, stub: Stub, tokens: Tokens
) -> None:
    everyone = people.realm_people(realm())
    nurse = user_id("poh.bakker")
    now = dt.datetime.now(dt.UTC)
    assert _resolve(stub, tokens, _kis_subject(nurse)).person == nurse
    people.sync_people(identity_service.deps.uow, [p for p in everyone if p.id != nurse], now)
    try:
        fail = fails(
            stub.ResolveDelegation,
            rpc.ResolveDelegationRequest(subject=_kis_subject(nurse)),
            bearer(tokens.client("svc-referral")),
        )
        assert fail.reason == "ON_BEHALF_OF_NOT_ALLOWED"
    finally:
        people.sync_people(identity_service.deps.uow, everyone, now)
    assert _resolve(stub, tokens, _kis_subject(nurse)).person == nurse


def _log_size(stub: Stub, tokens: Tokens) -> int:
    """The number of entries the auditor sees for the whole care group (itself logged)."""
    auditor = bearer(tokens.user("auditor.dekker"))
    total, token = 0, ""
    while True:
        page = stub.ListAccessLogEntries(
            rpc.ListAccessLogEntriesRequest(page_token=token, page_size=1000),
            metadata=auditor,
            timeout=10,
        )
        total += sum(1 for e in page.access_log_entries if e.event != "LIST_ACCESS_LOG")
        token = page.next_page_token
        if not token:
            return total

"""LookupPeople: the user ids other services show (referrers, care-plan authors, the access
log's users) resolved to a display name, roles and organisation, for callers who may see
that person's actions, and nothing more. Staff and system clients see their own care group;
a patient sees the people in their own access log; an id that is unknown and one the caller
may not see are answered alike."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import jwt
import pytest

from carenet.identity.v1 import identity_service_pb2 as rpc
from carenet.identity.v1 import identity_service_pb2_grpc as rpc_grpc
from identity.models import Person
from identity.use_cases.deps import Deps
from servicekit.auth import ON_BEHALF_OF_HEADER
from testkit.fixtures import OTHER_TENANT, Tokens, bearer

from .calls import fails, realm, user_id

Stub = rpc_grpc.IdentityServiceStub

DIRECTORY = [
    "dr.jansen",
    "poh.bakker",
    "dr.devries",
    "dr.smit",
    "coach.visser",
    "ambtenaar.mulder",
    "coach.degroot",
    "analist.peters",
    "admin.zuidoost",
    "auditor.dekker",
]


def _lookup(
    stub: Stub, metadata: tuple[tuple[str, str], ...], *users: str
) -> rpc.LookupPeopleResponse:
    response: rpc.LookupPeopleResponse = stub.LookupPeople(
        rpc.LookupPeopleRequest(users=list(users)), metadata=metadata, timeout=10
    )
    return response


def _name(username: str) -> str:
    (user,) = (u for u in realm()["users"] if u["username"] == username)
    return f"{user['firstName']} {user['lastName']}"


@pytest.fixture(scope="module")
def noord_person(deps: Deps) -> str:
    """A person of another care group in the directory (the demo realm has none)."""
    person_id = f"noord-{uuid.uuid4().hex[:12]}"
    with deps.uow() as uow:
        uow.repo.add(
            Person(
                id=person_id,
                username="dr.noord.lookup",
                display_name="Noor Noordhuis",
                organisation_id="gp-noord",
                care_group_id=OTHER_TENANT,
                roles="gp",
                active=True,
                update_time=dt.datetime.now(dt.UTC),
            )
        )
        uow.commit()
    return person_id


def test_a_gp_resolves_people_of_the_care_group_to_name_roles_and_organisation_only(
    stub: Stub, tokens: Tokens
) -> None:
    found = _lookup(
        stub,
        bearer(tokens.user("dr.jansen")),
        user_id("coach.degroot"),
        user_id("dr.devries"),
        user_id("coach.degroot"),
    )
    assert [(p.user, p.display_name, list(p.roles), p.organisation) for p in found.people] == [
        (
            user_id("coach.degroot"),
            _name("coach.degroot"),
            ["provider"],
            "organisations/gli-beweegfit",
        ),
        (user_id("dr.devries"), _name("dr.devries"), ["gp"], "organisations/gp-het-anker"),
    ]
    assert found.people[1].organisation_display_name == "Huisartsenpraktijk Het Anker"
    assert list(found.not_found) == []
    # Nothing more about a person: no username, e-mail address or account state.
    assert set(rpc.PersonSummary.DESCRIPTOR.fields_by_name) == {
        "user",
        "display_name",
        "roles",
        "organisation",
        "organisation_display_name",
    }


def test_unknown_people_another_care_groups_and_accounts_that_are_no_people_are_not_found_alike(
    stub: Stub, tokens: Tokens, noord_person: str
) -> None:
    unknown = str(uuid.uuid4())
    patient = user_id("pat.dewit")
    asked = [unknown, noord_person, patient, user_id("service-account-svc-referral")]
    found = _lookup(stub, bearer(tokens.user("dr.jansen")), *asked)
    assert list(found.people) == []
    assert list(found.not_found) == asked
    # One at a time, too: an existing person of another care group answers exactly like an
    # id nobody has.
    one = _lookup(stub, bearer(tokens.user("dr.jansen")), noord_person)
    other = _lookup(stub, bearer(tokens.user("dr.jansen")), unknown)
    assert (list(one.people), len(one.not_found)) == (list(other.people), len(other.not_found))


def test_another_care_groups_gp_learns_nothing_about_this_care_groups_people(
    stub: Stub, tokens: Tokens, noord_person: str
) -> None:
    """The attacker: a GP of cg-noord asks about the whole directory of cg-zuidoost."""
    everyone = [user_id(u) for u in DIRECTORY]
    found = _lookup(stub, bearer(tokens.user("dr.noord")), *everyone)
    assert list(found.people) == []
    assert list(found.not_found) == everyone
    own = _lookup(stub, bearer(tokens.user("dr.noord")), noord_person)
    assert [p.display_name for p in own.people] == ["Noor Noordhuis"]


def test_a_patient_sees_exactly_the_people_in_their_own_access_log(
    stub: Stub, tokens: Tokens
) -> None:
    # dr.jansen reads p-0002's registration, so p-0002's log names them.
    stub.GetPatient(
        rpc.GetPatientRequest(name="patients/p-0002"),
        metadata=bearer(tokens.user("dr.jansen")),
        timeout=10,
    )
    in_log: set[str] = set()
    token = ""
    auditor = bearer(tokens.user("auditor.dekker"))
    while True:
        page = stub.ListAccessLogEntries(
            rpc.ListAccessLogEntriesRequest(
                patient="patients/p-0002", page_size=1000, page_token=token
            ),
            metadata=auditor,
            timeout=10,
        )
        in_log |= {e.user for e in page.access_log_entries}
        in_log |= {e.responsible_user for e in page.access_log_entries}
        token = page.next_page_token
        if not token:
            break
    everyone = [user_id(u) for u in DIRECTORY]
    expected = [u for u in everyone if u in in_log]
    assert user_id("dr.jansen") in expected
    assert len(expected) < len(everyone)  # someone of the directory never looked

    found = _lookup(stub, bearer(tokens.patient("pat.yilmaz")), *everyone)

    assert [p.user for p in found.people] == expected
    assert list(found.not_found) == [u for u in everyone if u not in in_log]
    jansen = next(p for p in found.people if p.user == user_id("dr.jansen"))
    assert (jansen.display_name, jansen.organisation) == (
        _name("dr.jansen"),
        "organisations/gp-de-linde",
    )


def test_the_kis_as_itself_and_for_its_gp_sees_its_care_group(stub: Stub, tokens: Tokens) -> None:
    kis = bearer(tokens.client("carenet-kis"))
    as_itself = _lookup(stub, kis, user_id("dr.smit"))
    for_gp = _lookup(stub, (*kis, (ON_BEHALF_OF_HEADER, user_id("dr.jansen"))), user_id("dr.smit"))
    assert [p.display_name for p in as_itself.people] == [_name("dr.smit")]
    assert [p.display_name for p in for_gp.people] == [_name("dr.smit")]


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param(("user", "analist.peters"), id="insurer-analyst"),
        pytest.param(("client", "svc-referral"), id="platform-service"),
    ],
)
def test_insurers_and_platform_services_see_nobody(
    stub: Stub, tokens: Tokens, caller: tuple[str, str]
) -> None:
    kind, name = caller
    token = tokens.user(name) if kind == "user" else tokens.client(name)
    fail = fails(
        stub.LookupPeople, rpc.LookupPeopleRequest(users=[user_id("dr.jansen")]), bearer(token)
    )
    assert (fail.code, fail.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED")


def test_the_request_is_validated_before_anything_is_read(stub: Stub, tokens: Tokens) -> None:
    gp = bearer(tokens.user("dr.jansen"))
    cases = [
        ([], "USERS_REQUIRED", "users"),
        ([str(n) for n in range(101)], "TOO_MANY_USERS", "users"),
        (["a", ""], "USER_REQUIRED", "users[1]"),
        (["x" * 201], "USER_ID_TOO_LONG", "users[0]"),
    ]
    for users, reason, field in cases:
        fail = fails(stub.LookupPeople, rpc.LookupPeopleRequest(users=users), gp)
        assert fail.code == grpc.StatusCode.INVALID_ARGUMENT
        assert (fail.field_violations[0][0], fail.field_violations[0][2]) == (field, reason)


def test_a_token_of_another_tenant_names_its_own_care_group(tokens: Tokens) -> None:
    """The attacker's token really is of cg-noord (what the test above relies on)."""
    claims = jwt.decode(tokens.user("dr.noord"), options={"verify_signature": False})
    assert claims["carenet_tenant"] == OTHER_TENANT

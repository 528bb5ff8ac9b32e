"""Who LookupPeople shows to whom, on in-memory fakes (the SQL is covered by
api/test_people_lookup.py on PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest

from identity.errors import RoleNotPermitted
from identity.models import LogRecord, Organisation, Person
from identity.use_cases.people import lookup_people
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument

from ..fakes import FakeStore, fake_deps

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _person(person_id: str, org: str, care_group: str, roles: str) -> Person:
    return Person(
        id=person_id,
        username=f"user-{person_id}",
        display_name=f"Name {person_id}",
        organisation_id=org,
        care_group_id=care_group,
        roles=roles,
        active=True,
        update_time=NOW,
    )


def _caller(roles: set[str], care_group: str = "cg-a", patient: str = "") -> Principal:
    return Principal(
        subject="caller",
        client_id="test",
        organisation="" if patient else "organisations/gp-a",
        care_group=f"organisations/{care_group}",
        roles=frozenset(roles),
        patient=f"patients/{patient}" if patient else "",
    )


def _entry(patient_id: str, user: str, responsible: str) -> LogRecord:
    return LogRecord(
        event="AUTHORIZE",
        event_time=NOW,
        patient_id=patient_id,
        care_group_id="cg-a",
        user_id=user,
        responsible_user=responsible,
        organisation_id="gp-a",
        roles="gp",
        data_category="care-plan",
        action="read",
        purpose="",
        decision="permit",
        basis="care-relationship",
        reason="",
        emergency=False,
        emergency_reason="",
        access_point="test",
    )


@pytest.fixture
def store() -> FakeStore:
    org = Organisation(
        id="gp-a", display_name="Praktijk A", type="gp-practice", care_group_id="cg-a"
    )
    return FakeStore(
        rows=[
            org,
            _person("gp1", "gp-a", "cg-a", "gp"),
            _person("coach1", "gli-a", "cg-a", "provider,delegate"),
            _person("gp-b", "gp-b", "cg-b", "gp"),
        ],
        log=[_entry("p1", "kis-client", "gp1"), _entry("p2", "coach1", "coach1")],
    )


def test_staff_see_their_care_group_only_with_rights_carrying_roles(store: FakeStore) -> None:
    found = lookup_people(fake_deps(store), _caller({"provider"}), ["gp1", "gp-b", "coach1", "x"])
    assert [(p.user, p.roles, p.organisation_display_name) for p in found.people] == [
        ("gp1", ("gp",), "Praktijk A"),
        ("coach1", ("provider",), ""),
    ]
    assert found.not_found == ["gp-b", "x"]


def test_a_patient_sees_the_people_of_their_own_log_only(store: FakeStore) -> None:
    found = lookup_people(
        fake_deps(store), _caller({"patient"}, patient="p1"), ["coach1", "gp1", "kis-client"]
    )
    assert [p.user for p in found.people] == ["gp1"]
    assert found.not_found == ["coach1", "kis-client"]


@pytest.mark.parametrize("roles", [{"insurer-analyst"}, {"service"}, set()])
def test_roles_that_see_no_one_are_refused(store: FakeStore, roles: set[str]) -> None:
    with pytest.raises(RoleNotPermitted):
        lookup_people(fake_deps(store), _caller(roles), ["gp1"])


def test_no_care_group_no_lookup(store: FakeStore) -> None:
    with pytest.raises(RoleNotPermitted):
        lookup_people(fake_deps(store), _caller({"gp"}, care_group=""), ["gp1"])


def test_at_most_a_hundred_users(store: FakeStore) -> None:
    with pytest.raises(InvalidArgument):
        lookup_people(fake_deps(store), _caller({"gp"}), [str(n) for n in range(101)])

"""Acting for a person: the x-carenet-on-behalf-of header is taken only from delegates."""

from __future__ import annotations

import pytest

from servicekit.auth import (
    DELEGATE_ROLE,
    MAX_ON_BEHALF_OF_LENGTH,
    OnBehalfOfNotAllowed,
    Principal,
    acting_for,
)
from servicekit.authorization import subject_of
from servicekit.errors import InvalidArgument

PERSON_SUB = "be21ba23-a345-5af6-9768-5903b37b0418"


def principal(
    *roles: str, subject: str = "kis-account", client_id: str = "carenet-kis"
) -> Principal:
    return Principal(
        subject=subject,
        client_id=client_id,
        organisation="organisations/gp-de-linde",
        care_group="organisations/cg-zuidoost",
        roles=frozenset(roles),
    )


def test_a_delegate_acts_for_the_person_it_names_and_stays_itself() -> None:
    acting = acting_for(principal(DELEGATE_ROLE), [PERSON_SUB])
    assert acting.on_behalf_of == PERSON_SUB
    assert (acting.subject, acting.client_id) == ("kis-account", "carenet-kis")
    assert acting.responsible_user == PERSON_SUB


@pytest.mark.parametrize(
    "caller",
    [
        principal("gp", subject="dr-jansen-sub"),  # a person's own token
        principal("service", client_id="svc-referral"),  # another system client
        principal("insurer-analyst", client_id="carenet-insurer"),
        principal(),  # a system client with no role at all
    ],
)
def test_anyone_but_a_delegate_sending_the_header_is_refused(caller: Principal) -> None:
    with pytest.raises(OnBehalfOfNotAllowed) as caught:
        acting_for(caller, [PERSON_SUB])
    assert caught.value.reason == "ON_BEHALF_OF_NOT_ALLOWED"
    assert PERSON_SUB not in caught.value.message


@pytest.mark.parametrize("values", [[], [""], ["", ""]])
def test_an_empty_header_asserts_nothing_and_counts_as_none(values: list[str]) -> None:
    person = principal("gp", subject="dr-jansen-sub")
    assert acting_for(person, values) is person
    assert acting_for(principal(DELEGATE_ROLE), values).on_behalf_of == ""


def test_a_delegate_naming_two_people_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        acting_for(principal(DELEGATE_ROLE), [PERSON_SUB, "someone-else"])
    assert caught.value.reason == "INVALID_ON_BEHALF_OF"
    assert acting_for(principal(DELEGATE_ROLE), [PERSON_SUB, PERSON_SUB]).on_behalf_of == PERSON_SUB


@pytest.mark.parametrize(
    "value", ["x" * (MAX_ON_BEHALF_OF_LENGTH + 1), "dr\njansen", "dr.jänsen", "a\x00b"]
)
def test_a_delegate_naming_no_possible_user_id_is_refused(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        acting_for(principal(DELEGATE_ROLE), [value])
    assert caught.value.reason == "INVALID_ON_BEHALF_OF"
    assert [v.field for v in caught.value.field_violations()] == ["x-carenet-on-behalf-of"]


def test_the_delegate_role_is_known() -> None:
    claims = {"sub": "s", "azp": "carenet-kis", "realm_access": {"roles": ["delegate", "x"]}}
    assert Principal.from_claims(claims).roles == frozenset({DELEGATE_ROLE})
    assert Principal.from_claims(claims).is_delegate


def test_the_subject_identity_is_asked_about_carries_the_system_and_the_person() -> None:
    subject = subject_of(acting_for(principal(DELEGATE_ROLE), [PERSON_SUB]))
    assert subject.user == "kis-account"
    assert subject.client_id == "carenet-kis"
    assert subject.on_behalf_of == PERSON_SUB
    assert subject.organisation == "organisations/gp-de-linde"
    assert list(subject.roles) == [DELEGATE_ROLE]

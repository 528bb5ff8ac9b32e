"""Open referrals are unique per patient, offer and referring organisation (against fakes):
another organisation's open referral is no duplicate and is never read or named; a
duplicate is the caller's own organisation's open referral."""

from __future__ import annotations

import pytest

from referral import errors
from referral.deps import Deps
from referral.models import Referral, Status
from testkit.fakes import FakeIdentity

from ..fakes import GP, NURSE, OTHER_GP, fake_deps
from .helpers import listed_offer, refer


@pytest.fixture
def identity() -> FakeIdentity:
    return FakeIdentity()


@pytest.fixture
def deps(identity: FakeIdentity) -> Deps:
    deps = fake_deps(identity)
    listed_offer(deps, "gli", total_places=5)
    return deps


def test_the_open_key_holds_the_referring_organisation() -> None:
    assert Referral.open_key_for("p-0001", "gli", "gp-de-linde") != Referral.open_key_for(
        "p-0001", "gli", "gp-het-anker"
    )


def test_another_organisations_open_referral_is_neither_a_duplicate_nor_read(
    deps: Deps, identity: FakeIdentity
) -> None:
    practice = refer(deps, who=GP)
    identity.questions.clear()
    other = refer(deps, who=OTHER_GP)
    assert other.referral.id != practice.referral.id
    assert other.referral.referrer_org_id == "gp-het-anker"
    assert other.referral.status == Status.REQUESTED.value
    # only the create's own question: nothing about the practice's referral was asked
    assert [q.access.value for q in identity.questions] == ["create"]


def test_a_duplicate_names_only_the_callers_own_organisations_referral(
    deps: Deps, identity: FakeIdentity
) -> None:
    practice = refer(deps, who=GP)
    other = refer(deps, who=OTHER_GP)
    with pytest.raises(errors.DuplicateReferral) as caught:
        refer(deps, who=OTHER_GP)
    assert caught.value.metadata["existing_referral"] == other.referral.name
    with pytest.raises(errors.DuplicateReferral) as caught:
        refer(deps, who=NURSE)
    assert caught.value.metadata["existing_referral"] == practice.referral.name

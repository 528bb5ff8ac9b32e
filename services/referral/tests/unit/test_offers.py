"""The menu card: ownership, curation, recognition expiry, and matching that explains itself."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from referral import eligibility, errors
from referral.models import CapacityStatus, Funding, OfferCategory, RecognitionLevel
from referral.use_cases import curation, matching, offers, transitions
from servicekit.errors import InvalidArgument
from servicekit.paging import PageRequest

from ..fakes import ADMIN, COACH, GP, NOORD_GP, OFFICER, PROVIDER, Clock, fake_deps
from .helpers import listed_offer, refer

AREA = eligibility.Profile(
    age=50, bmi=32.0, postcode="5612", municipality="GM0772", conditions=("T90",), languages=("nl",)
)


def test_a_municipality_edits_its_own_offers_and_not_a_providers() -> None:
    deps = fake_deps()
    offers.create_offer(
        deps, OFFICER, offers.OfferInput("Walk", category=OfferCategory.PHYSICAL_ACTIVITY), "walk"
    )
    changed = offers.update_offer(
        deps, COACH, "walk", offers.OfferInput(description="Wednesdays"), ["description"]
    )
    assert changed.description == "Wednesdays" and changed.display_name == "Walk"
    with pytest.raises(errors.NotOfferOwner):
        offers.update_offer(
            deps, PROVIDER, "walk", offers.OfferInput(description="x"), ["description"]
        )


def test_clinicians_do_not_create_offers() -> None:
    with pytest.raises(errors.RoleNotPermitted):
        offers.create_offer(fake_deps(), GP, offers.OfferInput("x", category=OfferCategory.GLI))


def test_curation_goes_draft_proposed_listed_retired_by_the_right_hands() -> None:
    deps = fake_deps()
    offers.create_offer(deps, PROVIDER, offers.OfferInput("GLI", category=OfferCategory.GLI), "gg")
    with pytest.raises(errors.NotCurator):
        curation.transition_offer(deps, PROVIDER, "gg", "publish")
    with pytest.raises(errors.InvalidOfferTransition):
        curation.transition_offer(deps, ADMIN, "gg", "publish")
    with pytest.raises(errors.NotOfferOwner):
        curation.transition_offer(deps, ADMIN, "gg", "propose")
    assert curation.transition_offer(deps, PROVIDER, "gg", "propose").state == "proposed"
    assert curation.transition_offer(deps, ADMIN, "gg", "publish").state == "listed"
    assert curation.transition_offer(deps, ADMIN, "gg", "retire").state == "retired"


def test_only_listed_offers_are_matched_or_referred_to() -> None:
    deps = fake_deps()
    offers.create_offer(
        deps, PROVIDER, offers.OfferInput("Draft", category=OfferCategory.GLI), "dd"
    )
    matches = matching.find_offers(deps, GP, AREA).items
    assert matches == []
    with pytest.raises(errors.OfferNotListed):
        refer(deps, offer_id="dd")


def test_an_offer_drops_off_the_menu_on_its_recognition_validity_date() -> None:
    clock = Clock()
    deps = fake_deps(clock=clock)
    listed_offer(
        deps,
        "gg",
        recognition_level=RecognitionLevel.WELL_DESCRIBED,
        recognition_valid_until=clock.now + dt.timedelta(days=1),
    )
    assert len(matching.find_offers(deps, GP, AREA).items) == 1
    clock.now += dt.timedelta(days=1)
    offer = offers.get_offer(deps, GP, "gg")
    assert offer.recognition_expired(clock.now)
    assert matching.find_offers(deps, GP, AREA).items == []
    with pytest.raises(errors.OfferNotListed) as caught:
        refer(deps, offer_id="gg")
    assert caught.value.reason == "RECOGNITION_EXPIRED"


def test_matching_ranks_by_the_documented_score_and_explains_it() -> None:
    deps = fake_deps()
    listed_offer(
        deps,
        "gli",
        eligibility=eligibility.GLI_RULE,
        target_conditions=["T90"],
        cost_options=[{"funding": Funding.BASIC_INSURANCE.value}],
        recognition_level=RecognitionLevel.EFFECTIVE_GOOD,
        recognition_valid_until=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    )
    listed_offer(
        deps,
        "walk",
        owner=COACH,
        category=OfferCategory.PHYSICAL_ACTIVITY,
        languages=["tr"],
        eligibility={"field": "age", "op": "lt", "number": 40},
    )
    listed_offer(
        deps,
        "full",
        owner=COACH,
        category=OfferCategory.PEER_SUPPORT,
        capacity_status=CapacityStatus.NO_CAPACITY,
    )
    listed_offer(deps, "far", owner=COACH, service_area={"municipality_codes": ["GM0753"]})
    found = matching.find_offers(deps, GP, AREA)
    matches = found.items
    assert found.next is None
    assert [m.offer.id for m in matches] == ["gli", "full", "walk"]
    gli = matches[0]
    assert gli.score == 100 + 20 + 30 + 15 + 10 + 10
    assert gli.reasons[0] == "eligible +100"
    assert gli.eligibility.eligible and len(gli.eligibility.outcomes) == 5
    assert matches[1].no_capacity and matches[1].capacity is CapacityStatus.NO_CAPACITY
    assert not matches[2].eligibility.eligible
    only = matching.find_offers(deps, GP, AREA, eligible_only=True).items
    assert [m.offer.id for m in only] == ["gli", "full"]
    again = matching.find_offers(deps, GP, AREA).items
    assert [(m.offer.id, m.score, m.reasons) for m in again] == [
        (m.offer.id, m.score, m.reasons) for m in matches
    ]  # deterministic


def test_a_waitlist_offer_stays_available_and_says_so() -> None:
    deps = fake_deps()
    listed_offer(deps, "busy", capacity_status=CapacityStatus.WAITLIST, waitlist_length=15)
    (match,) = matching.find_offers(deps, GP, AREA).items
    assert match.capacity is CapacityStatus.WAITLIST and not match.no_capacity


def test_matching_pages_through_results() -> None:
    deps = fake_deps()
    for i in range(5):
        listed_offer(deps, f"o{i}")
    first = matching.find_offers(deps, GP, AREA, page=PageRequest(2))
    second = matching.find_offers(deps, GP, AREA, page=PageRequest(2, first.next))
    third = matching.find_offers(deps, GP, AREA, page=PageRequest(2, second.next))
    items = [*first.items, *second.items, *third.items]
    assert [m.offer.id for m in items] == [f"o{i}" for i in range(5)]
    assert third.next is None


def test_another_care_groups_menu_is_invisible() -> None:
    deps = fake_deps()
    listed_offer(deps, "gg")
    assert matching.find_offers(deps, NOORD_GP, AREA).items == []
    with pytest.raises(errors.OfferNotFound):
        offers.get_offer(deps, NOORD_GP, "gg")


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        (eligibility.Profile(postcode="56123"), "profile.postcode"),
        (eligibility.Profile(municipality="0772"), "profile.municipality_code"),
        (eligibility.Profile(), "profile.postcode"),
        (eligibility.Profile(postcode="5612", pam_level=7), "profile.pam_level"),
    ],
)
def test_bad_profiles_are_refused_naming_the_field(
    profile: eligibility.Profile, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        matching.find_offers(fake_deps(), GP, profile)
    assert field in [v.field for v in caught.value.violations]


def test_matching_sees_capacity_changes_at_once() -> None:
    deps = fake_deps()
    listed_offer(deps, "one", total_places=1)
    assert matching.find_offers(deps, GP, AREA).items[0].capacity is CapacityStatus.CAPACITY
    view = refer(deps, offer_id="one")
    from referral.models import Status

    transitions.transition_referral(deps, PROVIDER, "p-0001", view.referral.id, Status.ACCEPTED)
    assert matching.find_offers(deps, GP, AREA).items[0].capacity is CapacityStatus.WAITLIST


def test_the_ranking_follows_the_explained_score_across_varied_offers() -> None:
    deps = fake_deps()
    variants: list[dict[str, Any]] = [
        {"target_conditions": ["T90", "K86"], "languages": ["tr"]},
        {"capacity_status": CapacityStatus.WAITLIST, "languages": ["nl"]},
        {"cost_options": [{"funding": "municipality"}], "target_conditions": ["t90"]},
        {"service_area": {"postcode_ranges": [{"first": "5600", "last": "5699"}]}},
        {"eligibility": {"field": "bmi", "op": "lt", "number": 25}},
        {
            "recognition_level": RecognitionLevel.WELL_FOUNDED,
            "recognition_valid_until": dt.datetime(2031, 1, 1, tzinfo=dt.UTC),
        },
        {"capacity_status": CapacityStatus.ADDITIONAL_ASSESSMENT},
        {"eligibility": eligibility.GLI_RULE, "languages": ["en"]},
    ]
    for i, fields in enumerate(variants):
        listed_offer(deps, f"v{i}", **fields)
    matches = matching.find_offers(deps, GP, AREA, page=PageRequest(100)).items
    assert len(matches) == len(variants)
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    for m in matches:
        assert m.score == sum(float(r.rsplit("+", 1)[1]) for r in m.reasons)

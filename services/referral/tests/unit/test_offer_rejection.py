"""RetireOffer's reason on the in-memory fakes: required when the care group's admin rejects
a proposed offer, optional for the owner's withdrawal and a listed offer's retirement,
bounded, without control characters, checked before the offer is read; kept as the
offer's state_reason and cleared by the next decision."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from referral.deps import Deps
from referral.models import OfferCategory
from referral.use_cases import curation, offers
from servicekit.errors import InvalidArgument

from ..fakes import ADMIN, PROVIDER, fake_deps


def _proposed(deps: Deps, offer_id: str) -> None:
    offers.create_offer(
        deps, PROVIDER, offers.OfferInput("GLI", category=OfferCategory.GLI), offer_id
    )
    curation.transition_offer(deps, PROVIDER, offer_id, "propose")


def _refusal(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        call()
    (violation,) = caught.value.violations
    return violation.field, violation.reason


def test_the_admin_must_give_a_reason_to_reject_a_proposed_offer() -> None:
    deps = fake_deps()
    _proposed(deps, "gg")
    assert _refusal(lambda: curation.transition_offer(deps, ADMIN, "gg", "retire")) == (
        "reason",
        "REASON_REQUIRED",
    )
    assert offers.get_offer(deps, PROVIDER, "gg").state == "proposed"
    rejected = curation.transition_offer(deps, ADMIN, "gg", "retire", reason=" Geen erkenning ")
    assert (rejected.state, rejected.state_reason) == ("retired", "Geen erkenning")


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("x" * 1001, "TEXT_TOO_LONG"),
        ("bel\x07", "INVALID_CHARACTERS"),
        ("\x7f", "INVALID_CHARACTERS"),
        ("a\x1bb", "INVALID_CHARACTERS"),
    ],
)
def test_a_reason_that_is_too_long_or_holds_control_characters_is_refused_first(
    reason: str, code: str
) -> None:
    deps = fake_deps()
    # refused before the offer is read: the same for an offer that does not exist
    assert _refusal(
        lambda: curation.transition_offer(deps, ADMIN, "none", "retire", reason=reason)
    ) == ("reason", code)


def test_line_breaks_and_tabs_are_kept_and_the_owner_needs_no_reason() -> None:
    deps = fake_deps()
    _proposed(deps, "gg")
    text = "Eerst:\n\t- erkenning\r\n\t- rooster"
    assert curation.transition_offer(deps, ADMIN, "gg", "retire", reason=text).state_reason == (
        text
    )
    _proposed(deps, "hh")
    assert curation.transition_offer(deps, PROVIDER, "hh", "retire").state_reason == ""


def test_a_listed_offer_is_retired_without_a_reason() -> None:
    deps = fake_deps()
    _proposed(deps, "gg")
    listed = curation.transition_offer(deps, ADMIN, "gg", "publish")
    assert listed.state_reason == ""
    assert curation.transition_offer(deps, ADMIN, "gg", "retire").state == "retired"

"""Curation of the menu card: the owner proposes, the care-group admin publishes, either
retires (with a reason for the owner; required when the admin rejects a proposed offer)."""

from __future__ import annotations

import unicodedata

from referral import errors
from referral.access import org_id
from referral.deps import Deps
from referral.errors import Violations
from referral.models import (
    Offer,
    OfferState,
)
from referral.use_cases.common import check_etag, check_text
from referral.use_cases.offers import CURATOR_ROLES, OWNER_ROLES, owned_offer
from servicekit.auth import Principal

OFFER_TRANSITIONS = {
    "propose": ({OfferState.DRAFT}, OfferState.PROPOSED),
    "publish": ({OfferState.PROPOSED}, OfferState.LISTED),
    "retire": ({OfferState.DRAFT, OfferState.PROPOSED, OfferState.LISTED}, OfferState.RETIRED),
}


# RetireOffer's reason: at most this many characters; line breaks and tabs are the only
# control characters it may hold (it is typed into a text area and shown to the owner).
MAX_REASON = 1000
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def validate_reason(reason: str) -> None:
    """The reason's own shape, before anything is read: INVALID_ARGUMENT naming ``reason``."""
    v = Violations()
    check_text(v, "reason", reason, MAX_REASON)
    if any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in reason):
        v.add("reason", "must not contain control characters", "INVALID_CHARACTERS")
    v.raise_if_any()


def transition_offer(
    deps: Deps, principal: Principal, offer_id: str, verb: str, etag: str = "", reason: str = ""
) -> Offer:
    """Curation: the owner proposes, the care-group admin publishes, either retires.

    A retirement keeps its ``reason`` on the offer (``state_reason``, shown to the owner);
    the care-group admin rejecting a proposed offer must give one (REASON_REQUIRED). Any
    other decision clears it."""
    sources, target = OFFER_TRANSITIONS[verb]
    reason = reason.strip()
    validate_reason(reason)
    now = deps.clock()
    with deps.uow() as uow:
        offer = owned_offer(uow, principal, offer_id)
        curator = bool(principal.roles & CURATOR_ROLES)
        owner = bool(principal.roles & OWNER_ROLES) and org_id(principal) == offer.owner_org_id
        if verb == "propose" and not owner:
            raise errors.NotOfferOwner("only the owning organisation proposes its offer")
        if verb == "publish" and not curator:
            raise errors.NotCurator("only the care group's admin lists offers")
        if verb == "retire" and not (owner or curator):
            raise errors.NotOfferOwner("only the owner or the care group's admin retires an offer")
        check_etag(etag, offer.etag)
        if OfferState(offer.state) not in sources:
            raise errors.InvalidOfferTransition(f"cannot {verb} an offer that is {offer.state}")
        rejecting = verb == "retire" and curator and not owner
        if rejecting and offer.state == OfferState.PROPOSED.value and not reason:
            v = Violations()
            v.add("reason", "is required to reject a proposed offer", "REASON_REQUIRED")
            v.raise_if_any()
        if target is OfferState.LISTED and offer.recognition_expired(now):
            raise errors.InvalidOfferTransition(
                "the offer's recognition has expired", reason="RECOGNITION_EXPIRED"
            )
        offer.state = target.value
        offer.state_reason = reason if verb == "retire" else ""
        offer.touch(now)
        uow.commit()
        return offer

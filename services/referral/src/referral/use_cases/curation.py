"""Curation of the menu card: the owner proposes, the care-group admin publishes, either
retires."""

from __future__ import annotations

from referral import errors
from referral.access import org_id
from referral.deps import Deps
from referral.models import (
    Offer,
    OfferState,
)
from referral.use_cases.common import check_etag
from referral.use_cases.offers import CURATOR_ROLES, OWNER_ROLES, owned_offer
from servicekit.auth import Principal

OFFER_TRANSITIONS = {
    "propose": ({OfferState.DRAFT}, OfferState.PROPOSED),
    "publish": ({OfferState.PROPOSED}, OfferState.LISTED),
    "retire": ({OfferState.DRAFT, OfferState.PROPOSED, OfferState.LISTED}, OfferState.RETIRED),
}


def transition_offer(
    deps: Deps, principal: Principal, offer_id: str, verb: str, etag: str = ""
) -> Offer:
    """Curation: the owner proposes, the care-group admin publishes, either retires."""
    sources, target = OFFER_TRANSITIONS[verb]
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
        if target is OfferState.LISTED and offer.recognition_expired(now):
            raise errors.InvalidOfferTransition(
                "the offer's recognition has expired", reason="RECOGNITION_EXPIRED"
            )
        offer.state = target.value
        offer.touch(now)
        uow.commit()
        return offer

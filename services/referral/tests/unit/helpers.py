"""Small builders for unit tests over fake deps."""

from __future__ import annotations

from typing import Any

from referral import eligibility
from referral.deps import Deps
from referral.models import CapacityStatus, OfferCategory, Status
from referral.use_cases import curation, history, offers, referrals
from servicekit.idempotency import IdempotentRequest

from ..fakes import ADMIN, GP, PROVIDER


def listed_offer(deps: Deps, offer_id: str = "gli", owner: Any = PROVIDER, **fields: Any) -> str:
    data = offers.OfferInput(
        display_name=fields.pop("display_name", f"Offer {offer_id}"),
        category=fields.pop("category", OfferCategory.GLI),
        service_area=fields.pop("service_area", {"municipality_codes": ["GM0772"]}),
        capacity_status=fields.pop("capacity_status", CapacityStatus.CAPACITY),
        **fields,
    )
    offers.create_offer(deps, owner, data, offer_id)
    curation.transition_offer(deps, owner, offer_id, "propose")
    curation.transition_offer(deps, ADMIN, offer_id, "publish")
    return offer_id


PROFILE = eligibility.Profile(age=50, bmi=31.0, postcode="5612", municipality="GM0772")


def refer(
    deps: Deps,
    patient: str = "p-0001",
    offer_id: str = "gli",
    who: Any = GP,
    request_id: str = "",
    draft: bool = False,
    fingerprint: str = "",
) -> history.ReferralView:
    """A create; its fingerprint (the servicer's hash of the request) defaults to one made of
    the patient and the offer."""
    return referrals.create_referral(
        deps,
        who,
        patient,
        referrals.ReferralInput(f"offers/{offer_id}", "lifestyle support", PROFILE, draft=draft),
        IdempotentRequest.of(
            who, request_id, "CreateReferral", fingerprint or f"{patient}/{offer_id}/{draft}"
        ),
    )


def force_status(deps: Deps, referral_id: str, status: Status) -> None:
    with deps.uow() as uow:
        referral = uow.repo.referral(referral_id)
        assert referral is not None
        referral.set_status(status)
        uow.commit()


def outbox(deps: Deps) -> list[dict[str, Any]]:
    """Every event committed so far, in cursor order (numbered first, as a stream does)."""
    number_committed_events(deps)
    with deps.uow() as uow:
        rows = uow.repo.events_after(0, 1_000_000, care_group_id=None)
        return [{"cursor": r.id, **r.payload} for r in rows]


def number_committed_events(deps: Deps) -> None:
    """Gives a cursor to every event committed so far, as a stream does before it reads."""
    with deps.uow() as uow:
        assert uow.repo.number_events(1_000_000)
        uow.commit()

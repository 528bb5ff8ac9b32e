"""Small builders for unit tests over fake deps."""

from __future__ import annotations

from typing import Any

from referral import eligibility, service
from referral.models import CapacityStatus, OfferCategory, Status

from ..fakes import ADMIN, GP, PROVIDER


def listed_offer(
    deps: service.Deps, offer_id: str = "gli", owner: Any = PROVIDER, **fields: Any
) -> str:
    data = service.OfferInput(
        display_name=fields.pop("display_name", f"Offer {offer_id}"),
        category=fields.pop("category", OfferCategory.GLI),
        service_area=fields.pop("service_area", {"municipality_codes": ["GM0772"]}),
        capacity_status=fields.pop("capacity_status", CapacityStatus.CAPACITY),
        **fields,
    )
    service.create_offer(deps, owner, data, offer_id)
    service.transition_offer(deps, owner, offer_id, "propose")
    service.transition_offer(deps, ADMIN, offer_id, "publish")
    return offer_id


PROFILE = eligibility.Profile(age=50, bmi=31.0, postcode="5612", municipality="GM0772")


def refer(
    deps: service.Deps,
    patient: str = "p-0001",
    offer_id: str = "gli",
    who: Any = GP,
    request_id: str = "",
    draft: bool = False,
    fingerprint: str = "",
) -> service.ReferralView:
    """A create; its fingerprint (the servicer's hash of the request) defaults to one made of
    the patient and the offer."""
    return service.create_referral(
        deps,
        who,
        patient,
        service.ReferralInput(f"offers/{offer_id}", "lifestyle support", PROFILE, draft=draft),
        request_id,
        fingerprint=fingerprint or f"{patient}/{offer_id}/{draft}",
    )


def force_status(deps: service.Deps, referral_id: str, status: Status) -> None:
    with deps.uow() as uow:
        referral = uow.repo.referral(referral_id)
        assert referral is not None
        referral.set_status(status)
        uow.commit()


def outbox(deps: service.Deps) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from referral.models import OutboxEvent

    with deps.uow() as uow:
        rows = uow.session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
        return [{"cursor": r.id, **r.payload} for r in rows]

"""Menukaart: the regional menu card, searched and filtered; an offer's page.

The filters are about offers, not about a patient, so they may sit in the query string.
Without filters the page lists the listed offers (``ListOffers``); with a condition,
municipality, postcode, category or funding it asks ``FindOffers`` (which also keeps to the
offers whose service area covers the municipality or postcode).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, g, render_template, request
from flask_babel import gettext as _

from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from web import auth, names

bp = Blueprint("menukaart", __name__, url_prefix="/menukaart")
PAGE_SIZE = 20
OFFER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _enum(value: str, enum: type) -> int:
    try:
        number = int(value)
    except ValueError:
        return 0
    return number if number in enum.values() else 0  # type: ignore[attr-defined]


@bp.get("")
@auth.roles_required(auth.PROFESSIONAL_ROLES)
def index() -> str:
    args = request.args
    filters: dict[str, Any] = {
        "category": _enum(args.get("category", ""), rf.OfferCategory),
        "funding": _enum(args.get("funding", ""), rf.Funding),
        "condition": args.get("condition", "").strip().upper()[:16],
        "municipality": args.get("municipality", "").strip().upper()[:6],
        "postcode": args.get("postcode", "").strip()[:4],
    }
    errors: dict[str, str] = {}
    if filters["municipality"] and not re.fullmatch(r"GM\d{4}", str(filters["municipality"])):
        errors["municipality"] = _("Vul een gemeentecode in zoals GM0772")
    if filters["postcode"] and not re.fullmatch(r"\d{4}", str(filters["postcode"])):
        errors["postcode"] = _("Vul de 4 cijfers van de postcode in, zoals 5611")
    token = args.get("page", "")[:200]
    offers: list[rf.Offer] = []
    next_token = ""
    filtered = any(filters.values())
    if not errors:
        if filtered:
            profile = rf.PatientProfile(
                conditions=[str(filters["condition"])] if filters["condition"] else [],
                postcode=str(filters["postcode"]),
                municipality_code=str(filters["municipality"]),
            )
            found = g.api.referral.FindOffers(
                rf_rpc.FindOffersRequest(
                    profile=profile,
                    categories=[rf.OfferCategory.ValueType(filters["category"])]
                    if filters["category"]
                    else [],
                    fundings=[rf.Funding.ValueType(filters["funding"])]
                    if filters["funding"]
                    else [],
                    page_size=PAGE_SIZE,
                    page_token=token,
                )
            )
            offers = [m.offer for m in found.matches]
            if filters["condition"]:
                offers = [
                    o
                    for o in offers
                    if not o.target_conditions
                    or any(c.startswith(str(filters["condition"])) for c in o.target_conditions)
                ]
            next_token = found.next_page_token
        else:
            listed = g.api.referral.ListOffers(
                rf_rpc.ListOffersRequest(
                    state=rf.OFFER_STATE_LISTED, page_size=PAGE_SIZE, page_token=token
                )
            )
            offers = list(listed.offers)
            next_token = listed.next_page_token
    names.organisations(o.owner_organisation for o in offers)
    return render_template(
        "menukaart/index.html",
        offers=offers,
        filters=filters,
        next_token=next_token,
        form_errors=errors,
        filtered=filtered,
    )


@bp.get("/<offer_id>")
@auth.roles_required(auth.PROFESSIONAL_ROLES)
def offer(offer_id: str) -> str:
    if not OFFER_ID.match(offer_id):
        abort(404)
    found = g.api.referral.GetOffer(rf_rpc.GetOfferRequest(name=f"offers/{offer_id}"))
    names.organisations([found.owner_organisation])
    return render_template("menukaart/offer.html", offer=found)

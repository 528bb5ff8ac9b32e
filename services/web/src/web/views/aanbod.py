"""Mijn aanbod (sport coach, municipality officer, lifestyle provider): my organisation's
offers; create one with the API's own validation (errors at the fields), propose it for the
menu card, see its curation status. Curatie (care-group staff): proposed offers waiting,
publish, or take off the menu card (RetireOffer) with a reason for the owner."""

from __future__ import annotations

import re
import uuid

import grpc
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from google.protobuf import field_mask_pb2
from werkzeug.wrappers.response import Response

from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from web import auth, backend, names
from web.views.menukaart import OFFER_ID

bp = Blueprint("aanbod", __name__)
FORM_FIELDS = (
    "display_name",
    "description",
    "category",
    "target_conditions",
    "municipality_codes",
    "application_process",
    "funding",
    "amount",
    "total_places",
    "contact_email",
    "offer_id",
    "request_id",
)
# API field paths of CreateOffer -> form fields
API_FIELDS = {
    "offer.display_name": "display_name",
    "offer.description": "description",
    "offer.category": "category",
    "offer.target_conditions": "target_conditions",
    "offer.service_area.municipality_codes": "municipality_codes",
    "offer.application_process": "application_process",
    "offer.cost_options": "funding",
    "offer.capacity.total_places": "total_places",
    "offer.contact.email": "contact_email",
    "offer_id": "offer_id",
}


def _to_field(path: str) -> str:
    clean = re.sub(r"\[\d+\]", "", path)
    for prefix, field in sorted(API_FIELDS.items(), key=lambda kv: -len(kv[0])):
        if clean.startswith(prefix):
            return field
    return "display_name"


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]


@bp.route("/aanbod", methods=["GET"])
@auth.roles_required(auth.OFFER_OWNER_ROLES)
def mine() -> str:
    user = auth.current_user()
    assert user is not None
    found = g.api.referral.ListOffers(
        rf_rpc.ListOffersRequest(
            owner_organisation=f"organisations/{user.organisation}", page_size=100
        )
    )
    return render_template("aanbod/mine.html", offers=found.offers)


def _offer_from(form: dict[str, str]) -> tuple[rf.Offer, dict[str, str]]:
    """The offer a filled-in form describes, and the errors this page finds itself (the
    API's own checks come back as field violations)."""
    errors: dict[str, str] = {}
    if not form["display_name"]:
        errors["display_name"] = _("Vul de naam van het aanbod in")
    try:
        category = int(form["category"] or 0)
    except ValueError:
        category = 0
    if category not in rf.OfferCategory.values() or not category:
        errors["category"] = _("Kies een categorie")
        category = 0
    offer = rf.Offer(
        display_name=form["display_name"][:200],
        description=form["description"][:4000],
        category=rf.OfferCategory.ValueType(category),
        target_conditions=[c.upper() for c in _split(form["target_conditions"])],
        service_area=rf.ServiceArea(
            municipality_codes=[c.upper() for c in _split(form["municipality_codes"])]
        ),
        application_process=form["application_process"][:2000],
        contact=rf.Contact(email=form["contact_email"][:200]),
    )
    if form["funding"]:
        try:
            cents = round(float(form["amount"].replace(",", ".") or 0) * 100)
        except ValueError:
            errors["amount"] = _("Vul een bedrag in euro in, zoals 12,50")
            cents = 0
        funding = int(form["funding"]) if form["funding"].isdigit() else 0
        offer.cost_options.append(
            rf.CostOption(funding=rf.Funding.ValueType(funding), amount_cents=cents)
        )
    if form["total_places"]:
        if not form["total_places"].isdigit():
            errors["total_places"] = _("Vul een heel getal in")
        else:
            offer.capacity.CopyFrom(
                rf.Capacity(
                    status=rf.CAPACITY_STATUS_CAPACITY, total_places=int(form["total_places"])
                )
            )
    return offer, errors


def _api_errors(found: backend.ErrorDetails) -> dict[str, str]:
    errors: dict[str, str] = {}
    for path, message in found.fields.items():
        errors.setdefault(_to_field(path), message)
    return errors or {
        "display_name": _("Controleer wat u invulde (%(reason)s)", reason=found.reason)
    }


@bp.route("/aanbod/nieuw", methods=["GET", "POST"])
@auth.roles_required(auth.OFFER_OWNER_ROLES)
def new() -> str | Response:
    form = {k: request.form.get(k, "").strip() for k in FORM_FIELDS}
    form["request_id"] = form["request_id"] or str(uuid.uuid4())
    errors: dict[str, str] = {}
    if request.method == "POST":
        offer, errors = _offer_from(form)
        if form["offer_id"] and not OFFER_ID.match(form["offer_id"]):
            errors["offer_id"] = _(
                "Alleen kleine letters, cijfers en streepjes, hoogstens 63 tekens"
            )
        if not errors:
            try:
                created = g.api.referral.CreateOffer(
                    rf_rpc.CreateOfferRequest(
                        offer=offer, offer_id=form["offer_id"], request_id=form["request_id"]
                    )
                )
            except grpc.RpcError as err:
                found = backend.details(err)
                if found.code == grpc.StatusCode.ALREADY_EXISTS:
                    errors["offer_id"] = _("Er is al een aanbod met deze code")
                elif found.code == grpc.StatusCode.INVALID_ARGUMENT:
                    errors = _api_errors(found)
                else:
                    raise
            else:
                flash(
                    _("Het aanbod %(name)s is opgeslagen als concept.", name=created.display_name)
                )
                return redirect(url_for("aanbod.mine"))
    return render_template("aanbod/new.html", form=form, form_errors=errors, editing=None)


EDITABLE = [
    "display_name",
    "description",
    "category",
    "target_conditions",
    "service_area",
    "application_process",
    "contact",
    "cost_options",
    "capacity",
]


def _form_of(offer: rf.Offer) -> dict[str, str]:
    cost = offer.cost_options[0] if offer.cost_options else None
    return {
        "display_name": offer.display_name,
        "description": offer.description,
        "category": str(offer.category or ""),
        "target_conditions": ", ".join(offer.target_conditions),
        "municipality_codes": ", ".join(offer.service_area.municipality_codes),
        "application_process": offer.application_process,
        "funding": str(cost.funding) if cost else "",
        "amount": f"{cost.amount_cents / 100:.2f}".replace(".", ",") if cost else "",
        "total_places": str(offer.capacity.total_places or ""),
        "contact_email": offer.contact.email,
        "offer_id": offer.name.rsplit("/", 1)[-1],
        "request_id": "",
        "etag": offer.etag,
    }


@bp.route("/aanbod/<offer_id>/wijzigen", methods=["GET", "POST"])
@auth.roles_required(auth.OFFER_OWNER_ROLES)
def edit(offer_id: str) -> str | Response:
    current = _offer(offer_id)
    form = _form_of(current)
    errors: dict[str, str] = {}
    conflict = False
    if request.method == "POST":
        form = {k: request.form.get(k, "").strip() for k in [*FORM_FIELDS, "etag"]}
        form["offer_id"] = offer_id
        offer, errors = _offer_from(form)
        offer.name, offer.etag = current.name, form["etag"]
        if not errors:
            try:
                g.api.referral.UpdateOffer(
                    rf_rpc.UpdateOfferRequest(
                        offer=offer, update_mask=field_mask_pb2.FieldMask(paths=EDITABLE)
                    )
                )
            except grpc.RpcError as err:
                found = backend.details(err)
                if found.code == grpc.StatusCode.ABORTED:
                    conflict = True  # changed meanwhile: the typed values stay, the etag is new
                    form["etag"] = current.etag
                elif found.code == grpc.StatusCode.INVALID_ARGUMENT:
                    errors = _api_errors(found)
                elif found.code == grpc.StatusCode.FAILED_PRECONDITION:
                    errors = {
                        "display_name": _(
                            "Dit aanbod kan nu niet worden gewijzigd (%(reason)s)",
                            reason=found.reason,
                        )
                    }
                else:
                    raise
            else:
                flash(_("Het aanbod %(name)s is gewijzigd.", name=offer.display_name))
                return redirect(url_for("aanbod.mine"))
    return render_template(
        "aanbod/new.html", form=form, form_errors=errors, editing=current, conflict=conflict
    )


def _offer(offer_id: str) -> rf.Offer:
    if not OFFER_ID.match(offer_id):
        abort(404)
    found: rf.Offer = g.api.referral.GetOffer(rf_rpc.GetOfferRequest(name=f"offers/{offer_id}"))
    return found


@bp.post("/aanbod/<offer_id>/voorstellen")
@auth.roles_required(auth.OFFER_OWNER_ROLES)
def propose(offer_id: str) -> Response:
    offer = _offer(offer_id)
    g.api.referral.ProposeOffer(
        rf_rpc.ProposeOfferRequest(name=offer.name, etag=request.form.get("etag", ""))
    )
    flash(_("%(name)s is voorgesteld voor de menukaart.", name=offer.display_name))
    return redirect(url_for("aanbod.mine"))


@bp.get("/curatie")
@auth.roles_required(auth.CURATOR_ROLES)
def curation() -> str:
    found = g.api.referral.ListOffers(
        rf_rpc.ListOffersRequest(state=rf.OFFER_STATE_PROPOSED, page_size=100)
    )
    names.organisations(o.owner_organisation for o in found.offers)
    return render_template("aanbod/curation.html", offers=found.offers)


# RetireOffer's reason: at most this many characters (the service's limit)
MAX_REASON = 1000
# the service's reasons for a refused reason -> what the page says at the field
REASON_ERRORS = {
    "REASON_REQUIRED": _l("Vul de reden in voor de aanbieder"),
    "TEXT_TOO_LONG": _l("Gebruik hoogstens 1000 tekens"),
    "INVALID_CHARACTERS": _l("Gebruik alleen gewone tekens en regeleinden"),
}


@bp.route("/curatie/<offer_id>", methods=["GET", "POST"])
@auth.roles_required(auth.CURATOR_ROLES)
def review(offer_id: str) -> str | Response:
    offer = _offer(offer_id)
    errors: dict[str, str] = {}
    reason = ""
    if request.method == "POST":
        decision = request.form.get("decision", "")
        etag = request.form.get("etag", "")
        if decision == "publish":
            g.api.referral.PublishOffer(rf_rpc.PublishOfferRequest(name=offer.name, etag=etag))
            flash(_("%(name)s staat nu op de menukaart.", name=offer.display_name))
            return redirect(url_for("aanbod.curation"))
        if decision == "reject":
            reason = request.form.get("reason", "").strip()
            if not reason:
                errors["reason"] = str(REASON_ERRORS["REASON_REQUIRED"])
            elif len(reason) > MAX_REASON:
                errors["reason"] = str(REASON_ERRORS["TEXT_TOO_LONG"])
            else:
                try:
                    g.api.referral.RetireOffer(
                        rf_rpc.RetireOfferRequest(name=offer.name, etag=etag, reason=reason)
                    )
                except grpc.RpcError as err:
                    found = backend.details(err)
                    if found.code == grpc.StatusCode.INVALID_ARGUMENT and "reason" in found.fields:
                        errors["reason"] = str(
                            REASON_ERRORS.get(found.reason, found.fields["reason"])
                        )
                    elif found.code == grpc.StatusCode.ABORTED:
                        errors["reason"] = _(
                            "Iemand anders heeft dit aanbod net gewijzigd. Kijk het na en "
                            "wijs het opnieuw af."
                        )
                        offer = _offer(offer_id)
                    else:
                        raise
                else:
                    flash(_("%(name)s is afgewezen.", name=offer.display_name))
                    return redirect(url_for("aanbod.curation"))
    names.organisations([offer.owner_organisation])
    return render_template("aanbod/review.html", offer=offer, form_errors=errors, reason=reason)

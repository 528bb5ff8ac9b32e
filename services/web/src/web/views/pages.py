"""Start page, language choice and the fixed pages of the footer."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers.response import Response

from web import auth
from web.auth import User
from web.i18n import gettext as _

bp = Blueprint("pages", __name__)


def nav_items(user: User) -> list[tuple[str, str]]:
    """The main menu for this person: (endpoint, text in the request's language)."""
    items: list[tuple[str, str]] = []
    if user.is_patient:
        items += [("zorgplan.mine", _("Mijn zorgplan")), ("privacy.overview", _("Privacy"))]
        return items
    if user.has_any(auth.PROFESSIONAL_ROLES):
        items.append(("menukaart.index", _("Menukaart")))
    if user.has_any(auth.REFERRER_ROLES):
        items += [
            ("verwijzen.start", _("Verwijzen")),
            ("verwijzen.mine", _("Mijn verwijzingen")),
        ]
    if user.has_any(auth.OFFER_OWNER_ROLES):
        items += [("inbox.index", _("Inbox")), ("aanbod.mine", _("Mijn aanbod"))]
    if user.has_any(auth.CURATOR_ROLES):
        items.append(("aanbod.curation", _("Curatie")))
    if user.has_any(auth.OUTCOME_ROLES):
        items.append(("uitkomsten.index", _("Uitkomsten")))
    return items


# What each page is for, under its link on the start page (the patient's two in plain Dutch).
DESCRIPTIONS = {
    "zorgplan.mine": _l(
        "Uw doelen en afspraken. U kunt zelf opschrijven wat voor u belangrijk is."
    ),
    "privacy.overview": _l("Zie wie uw gegevens bekeek. Geef toestemming of trek die in."),
    "menukaart.index": _l("Leefstijl- en welzijnsaanbod van de regio zoeken en bekijken."),
    "verwijzen.start": _l("Passend aanbod zoeken voor een patiënt en verwijzen."),
    "verwijzen.mine": _l("De verwijzingen van uw organisatie, met hun stand en terugkoppeling."),
    "inbox.index": _l("Verwijzingen naar uw organisatie: accepteren, starten, afronden."),
    "aanbod.mine": _l("Het aanbod van uw organisatie: maken, wijzigen, voorstellen."),
    "aanbod.curation": _l("Voorgesteld aanbod beoordelen: op de menukaart zetten of afwijzen."),
    "uitkomsten.index": _l("Indicatoren per contract en periode, met de financiering."),
}


@bp.get("/")
def home() -> str | Response:
    user = auth.current_user()
    if user is None:
        return render_template("home.html", items=[])
    return render_template("home.html", items=nav_items(user), descriptions=DESCRIPTIONS)


@bp.post("/taal")
def language() -> Response:
    chosen = request.form.get("lang", "nl")
    session["lang"] = chosen if chosen in ("nl", "en") else "nl"
    back = request.referrer or ""
    host = request.host_url
    return redirect(back if back.startswith(host) else url_for("pages.home"))


@bp.get("/toegankelijkheid")
def accessibility() -> str:
    return render_template("accessibility.html")


@bp.get("/privacyverklaring")
def privacy_statement() -> str:
    return render_template("privacy_statement.html")

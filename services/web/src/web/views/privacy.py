"""Privacy (patient): who looked at my data and why (the access log), my consents per
category and kind of organisation; give and withdraw (withdrawal after a confirmation)."""

from __future__ import annotations

import re
import uuid

import grpc
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers.response import Response

from carenet.identity.v1 import identity_pb2 as idp
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from web import auth, backend, names

bp = Blueprint("privacy", __name__, url_prefix="/privacy")
CATEGORIES = (
    idp.DATA_CATEGORY_REFERRAL,
    idp.DATA_CATEGORY_CARE_PLAN,
    idp.DATA_CATEGORY_MEASUREMENTS,
)
HOLDERS = (idp.ORGANISATION_TYPE_GP_PRACTICE, idp.ORGANISATION_TYPE_HOSPITAL)
REQUESTERS = (
    idp.ORGANISATION_TYPE_HOSPITAL,
    idp.ORGANISATION_TYPE_MUNICIPALITY,
    idp.ORGANISATION_TYPE_LIFESTYLE_PROVIDER,
    idp.ORGANISATION_TYPE_GP_PRACTICE,
)
# Why someone could look (the access log's basis), in words for the patient.
BASES = {
    idp.BASIS_SELF: _l("U keek zelf"),
    idp.BASIS_CARE_RELATIONSHIP: _l("U bent bij hen in zorg"),
    idp.BASIS_CARE_RELATIONSHIP_AND_CONSENT: _l("U gaf toestemming"),
    idp.BASIS_REFERRAL_TARGET: _l("U bent naar hen verwezen"),
    idp.BASIS_EMERGENCY: _l("Noodgeval"),
    idp.BASIS_AUDIT: _l("Controle op privacy"),
}
# The person's role, as the access log names it (the roles that carry rights).
ROLES = {
    "gp": _l("Huisarts"),
    "practice-nurse": _l("Praktijkondersteuner"),
    "specialist": _l("Medisch specialist"),
    "sport-coach": _l("Buurtsportcoach"),
    "municipality-officer": _l("Medewerker gemeente"),
    "provider": _l("Leefstijlcoach"),
    "insurer-analyst": _l("Medewerker zorgverzekeraar"),
    "care-group-admin": _l("Medewerker zorggroep"),
    "auditor": _l("Privacyfunctionaris"),
    "service": _l("Systeem van carenet"),
}
CONSENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


def _me() -> str:
    user = auth.current_user()
    if user is None or not user.is_patient:
        abort(403)
    return f"patients/{user.patient.split('/')[-1]}"


def _number(value: str, allowed: tuple[int, ...]) -> int:
    try:
        number = int(value)
    except ValueError:
        return 0
    return number if number in allowed else 0


@bp.route("", methods=["GET", "POST"])
@auth.login_required
def overview() -> str | Response:
    patient = _me()
    errors: dict[str, str] = {}
    form = {k: request.form.get(k, "") for k in ("category", "holder", "requester", "request_id")}
    if request.method == "POST":
        category = _number(form["category"], CATEGORIES)
        holder = _number(form["holder"], HOLDERS)
        requester = _number(form["requester"], REQUESTERS)
        if not category:
            errors["category"] = _("Kies welke gegevens")
        if not holder:
            errors["holder"] = _("Kies wie de gegevens heeft")
        if not requester:
            errors["requester"] = _("Kies wie mag kijken")
        if not errors:
            try:
                g.api.identity.CreateConsent(
                    id_rpc.CreateConsentRequest(
                        parent=patient,
                        consent=idp.Consent(
                            data_category=idp.DataCategory.ValueType(category),
                            record_holder=idp.OrganisationSelector(
                                category=idp.OrganisationType.ValueType(holder)
                            ),
                            requester=idp.OrganisationSelector(
                                category=idp.OrganisationType.ValueType(requester)
                            ),
                            # from now, as identity's clock says
                        ),
                        request_id=form["request_id"][:64] or str(uuid.uuid4()),
                    )
                )
            except grpc.RpcError as err:
                found = backend.details(err)
                if found.code not in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.ALREADY_EXISTS,
                ):
                    raise
                errors["category"] = _(
                    "Deze toestemming kan niet worden gegeven (%(reason)s)", reason=found.reason
                )
            else:
                flash(_("Uw toestemming is opgeslagen."))
                return redirect(url_for("privacy.overview"))
    consents = g.api.identity.ListConsents(
        id_rpc.ListConsentsRequest(parent=patient, page_size=100)
    )
    entries = _latest_log_entries(patient, 50)
    names.organisations(
        [
            *(e.organisation for e in entries),
            *(c.record_holder.organisation for c in consents.consents),
            *(c.requester.organisation for c in consents.consents),
        ]
    )
    names.look_up_people(e.user for e in entries)
    return render_template(
        "privacy/overview.html",
        consents=consents.consents,
        entries=_grouped(entries),
        categories=CATEGORIES,
        holders=HOLDERS,
        requesters=REQUESTERS,
        form={**form, "request_id": form["request_id"] or str(uuid.uuid4())},
        form_errors=errors,
        bases=BASES,
        roles=ROLES,
    )


def _grouped(entries: list[idp.AccessLogEntry]) -> list[tuple[idp.AccessLogEntry, int]]:
    """Entries in a row that say the same (the same minute, person, organisation, data,
    action, basis and decision) as one line with how many times: a page read a referral
    several times in a second, the patient wants to know who looked and why."""
    rows: list[tuple[idp.AccessLogEntry, int]] = []
    last: tuple[object, ...] | None = None
    for e in entries:
        key = (
            e.event_time.seconds // 60,
            e.user,
            e.organisation,
            e.data_category,
            e.action,
            e.basis,
            e.decision,
            e.emergency,
        )
        if rows and key == last:
            rows[-1] = (rows[-1][0], rows[-1][1] + 1)
        else:
            rows.append((e, 1))
        last = key
    return rows


def _latest_log_entries(patient: str, count: int) -> list[idp.AccessLogEntry]:
    """The newest ``count`` entries, newest first: one page of identity's newest-first
    listing (one read of the log, one entry in it), however many entries came before."""
    found = g.api.identity.ListAccessLogEntries(
        id_rpc.ListAccessLogEntriesRequest(
            patient=patient, order_by="event_time desc", page_size=count
        )
    )
    return list(found.access_log_entries)


@bp.route("/toestemming/<consent_id>/intrekken", methods=["GET", "POST"])
@auth.login_required
def withdraw(consent_id: str) -> str | Response:
    patient = _me()
    if not CONSENT_ID.match(consent_id):
        abort(404)
    name = f"{patient}/consents/{consent_id}"
    consent = g.api.identity.GetConsent(id_rpc.GetConsentRequest(name=name))
    if request.method == "POST":
        g.api.identity.WithdrawConsent(
            id_rpc.WithdrawConsentRequest(name=name, etag=request.form.get("etag", ""))
        )
        flash(_("Uw toestemming is ingetrokken."))
        return redirect(url_for("privacy.overview"))
    return render_template("privacy/withdraw.html", consent=consent)

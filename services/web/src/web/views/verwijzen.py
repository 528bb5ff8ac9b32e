"""Verwijzen (GP, practice nurse, specialist): pick a patient, see the offers that fit with
the explanation of each, refer with a reason; my referrals with their status and feedback.

The patient is found by BSN (``LookupPatient``, posted, never in a URL); from then on pages
name the patient by the platform's internal id, which carries no identifying data. The
profile a referrer types (conditions, age, BMI, ...) is patient data: it is posted, kept in
the server-side session for the next page, and never put in a URL.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import grpc
from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from google.protobuf import field_mask_pb2
from werkzeug.wrappers.response import Response

from carenet.careplan.v1 import careplan_pb2 as cp
from carenet.careplan.v1 import careplan_service_pb2 as cp_rpc
from carenet.identity.v1 import identity_service_pb2 as id_rpc
from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from web import auth, backend, formatting, names

bp = Blueprint("verwijzen", __name__)
PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
REFERRAL_ID = PATIENT_ID
MAX_OFFER_NAMES = 25


# The ranking's reasons (referral's ranking.py, e.g. "targets T90 +20"), in words, without
# the points: what a referrer wants to know is why an offer is near the top.
_CAPACITY_WORDS = {
    "capacity": _l("plaats vrij"),
    "waitlist": _l("wachtlijst"),
    "additional-assessment-required": _l("eerst intake"),
    "no-capacity": _l("vol"),
}
_RECOGNITION_WORDS = {
    "well-described": rf.RECOGNITION_LEVEL_WELL_DESCRIBED,
    "well-founded": rf.RECOGNITION_LEVEL_WELL_FOUNDED,
    "effective-first-evidence": rf.RECOGNITION_LEVEL_EFFECTIVE_FIRST_EVIDENCE,
    "effective-good-evidence": rf.RECOGNITION_LEVEL_EFFECTIVE_GOOD_EVIDENCE,
    "effective-strong-evidence": rf.RECOGNITION_LEVEL_EFFECTIVE_STRONG_EVIDENCE,
}


def reason_text(reason: str) -> str:
    """One ranking reason in words; one the front does not know stays as sent."""
    text = re.sub(r"\s*\+\d+$", "", reason)
    if text == "eligible":
        return str(_("voldoet aan de voorwaarden"))
    if text.startswith("targets "):
        return str(_("bedoeld voor %(codes)s", codes=text.removeprefix("targets ")))
    if text.startswith("capacity "):
        word = _CAPACITY_WORDS.get(text.removeprefix("capacity "))
        return str(word) if word is not None else text
    if text.startswith("recognised "):
        level = _RECOGNITION_WORDS.get(text.removeprefix("recognised "))
        if level is not None:
            return str(
                _("erkend: %(level)s", level=formatting.label(formatting.RECOGNITION, level))
            )
    if text == "language":
        return str(_("in de taal van de patiënt"))
    if text == "no cost to the patient":
        return str(_("geen kosten voor de patiënt"))
    if text == "local (postcode)":
        return str(_("dichtbij (postcode)"))
    return text


def outcome_text(outcome: rf.PredicateOutcome) -> str:
    """A condition of the offer and whether the patient meets it, in words."""
    condition = formatting.predicate_text(outcome.predicate)
    if outcome.satisfied:
        return str(_("Ja: %(condition)s", condition=condition))
    if "unknown" in outcome.explanation:
        return str(_("Niet bekend: %(condition)s", condition=condition))
    return str(_("Nee: %(condition)s", condition=condition))


def _patient(patient_id: str) -> str:
    if not PATIENT_ID.match(patient_id):
        abort(404)
    return f"patients/{patient_id}"


def _bsn_ok(bsn: str) -> bool:
    if not re.fullmatch(r"\d{9}", bsn):
        return False
    total = sum(int(d) * w for d, w in zip(bsn[:8], range(9, 1, -1), strict=True))
    return (total - int(bsn[8])) % 11 == 0


@bp.route("/verwijzen", methods=["GET", "POST"])
@auth.roles_required(auth.REFERRER_ROLES)
def start() -> str | Response:
    errors: dict[str, str] = {}
    if request.method == "POST":
        bsn = re.sub(r"[\s.]", "", request.form.get("bsn", ""))
        if not _bsn_ok(bsn):
            errors["bsn"] = _("Vul een geldig BSN in van 9 cijfers")
        else:
            try:
                patient = g.api.identity.LookupPatient(
                    id_rpc.LookupPatientRequest(bsn=bsn, purpose="referral")
                )
            except grpc.RpcError as err:
                found = backend.details(err)
                if found.code not in (
                    grpc.StatusCode.NOT_FOUND,
                    grpc.StatusCode.PERMISSION_DENIED,
                ):
                    raise
                # the same answer for unknown and not mine: nothing to learn from it
                errors["bsn"] = _(
                    "U heeft geen behandelrelatie met een patiënt met dit BSN, "
                    "of het BSN is niet bekend"
                )
            else:
                recent = [p for p in session.get("recent_patients", []) if p != patient.name]
                session["recent_patients"] = [patient.name, *recent][:10]
                return redirect(url_for("verwijzen.profile", patient_id=patient.name.split("/")[1]))
    return render_template(
        "verwijzen/start.html",
        form_errors=errors,
        recent=[p.split("/")[1] for p in session.get("recent_patients", [])],
    )


PROFILE_FIELDS = (
    "conditions",
    "age",
    "bmi",
    "risk_factors",
    "pam_level",
    "postcode",
    "municipality",
    "languages",
)


def _profile_from(form: dict[str, str]) -> tuple[rf.PatientProfile, dict[str, str]]:
    errors: dict[str, str] = {}
    profile = rf.PatientProfile()
    profile.conditions.extend(
        c.strip().upper() for c in form.get("conditions", "").split(",") if c.strip()
    )
    profile.risk_factors.extend(
        c.strip() for c in form.get("risk_factors", "").split(",") if c.strip()
    )
    profile.languages.extend(
        c.strip().lower() for c in form.get("languages", "").split(",") if c.strip()
    )
    for name, kind, low, high in (
        ("age", int, 0, 130),
        ("pam_level", int, 1, 4),
        ("bmi", float, 10, 80),
    ):
        raw = form.get(name, "").strip().replace(",", ".")
        if not raw:
            continue
        try:
            value = kind(raw)
        except ValueError:
            errors[name] = _("Vul een getal in")
            continue
        if not low <= value <= high:
            errors[name] = _("Vul een getal in van %(low)s tot en met %(high)s", low=low, high=high)
            continue
        setattr(profile, name, value)
    postcode = form.get("postcode", "").strip()
    if postcode:
        if re.fullmatch(r"\d{4}", postcode):
            profile.postcode = postcode
        else:
            errors["postcode"] = _("Vul de 4 cijfers van de postcode in, zoals 5611")
    municipality = form.get("municipality", "").strip().upper()
    if municipality:
        if re.fullmatch(r"GM\d{4}", municipality):
            profile.municipality_code = municipality
        else:
            errors["municipality"] = _("Vul een gemeentecode in zoals GM0772")
    return profile, errors


# API field paths (PatientProfile) -> form fields
API_FIELDS = {"municipality_code": "municipality"}


def _api_errors(found: backend.ErrorDetails) -> dict[str, str]:
    errors: dict[str, str] = {}
    for path, message in found.fields.items():
        leaf = path.split(".")[-1].split("[")[0]
        errors[API_FIELDS.get(leaf, leaf)] = message
    return errors


@bp.route("/verwijzen/patient/<patient_id>", methods=["GET", "POST"])
@auth.roles_required(auth.REFERRER_ROLES)
def profile(patient_id: str) -> str | Response:
    name = _patient(patient_id)
    g.api.identity.GetPatient(id_rpc.GetPatientRequest(name=name))  # authorized and logged
    profiles: dict[str, dict[str, str]] = session.get("profiles", {})
    values = profiles.get(name, {})
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {k: request.form.get(k, "").strip()[:200] for k in PROFILE_FIELDS}
        _profile, errors = _profile_from(values)
        if not errors:
            session["profiles"] = {**profiles, name: values}
            return redirect(url_for("verwijzen.offers", patient_id=patient_id))
    return render_template(
        "verwijzen/profile.html", patient_id=patient_id, values=values, form_errors=errors
    )


@bp.get("/verwijzen/patient/<patient_id>/aanbod")
@auth.roles_required(auth.REFERRER_ROLES)
def offers(patient_id: str) -> str | Response:
    name = _patient(patient_id)
    values = session.get("profiles", {}).get(name)
    if values is None:
        return redirect(url_for("verwijzen.profile", patient_id=patient_id))
    profile, _errors = _profile_from(values)
    user = auth.current_user()
    assert user is not None
    role = next((r for r in ("gp", "practice-nurse", "specialist") if r in user.roles), "")
    try:
        found = g.api.referral.FindOffers(
            rf_rpc.FindOffersRequest(profile=profile, page_size=20, referrer_role=role)
        )
    except grpc.RpcError as err:
        details = backend.details(err)
        if details.code != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        return render_template(
            "verwijzen/profile.html",
            patient_id=patient_id,
            values=values,
            form_errors=_api_errors(details) or {"conditions": _("Controleer de gegevens")},
        )
    return render_template(
        "verwijzen/offers.html",
        patient_id=patient_id,
        matches=found.matches,
        values=values,
        reason_text=reason_text,
        outcome_text=outcome_text,
    )


@bp.route("/verwijzen/patient/<patient_id>/aanbod/<offer_id>", methods=["GET", "POST"])
@auth.roles_required(auth.REFERRER_ROLES)
def refer(patient_id: str, offer_id: str) -> str | Response:
    name = _patient(patient_id)
    values = session.get("profiles", {}).get(name)
    if values is None:
        return redirect(url_for("verwijzen.profile", patient_id=patient_id))
    if not REFERRAL_ID.match(offer_id):
        abort(404)
    offer = g.api.referral.GetOffer(rf_rpc.GetOfferRequest(name=f"offers/{offer_id}"))
    profile, _errors = _profile_from(values)
    errors: dict[str, str] = {}
    form: dict[str, Any] = {"reason": "", "add_to_plan": "yes", "request_id": str(uuid.uuid4())}
    if request.method == "POST":
        form = {
            "reason": request.form.get("reason", "").strip(),
            "add_to_plan": request.form.get("add_to_plan", ""),
            "request_id": request.form.get("request_id", "")[:64] or str(uuid.uuid4()),
        }
        if not form["reason"]:
            errors["reason"] = _("Vul de reden van verwijzing in")
        elif len(form["reason"]) > 2000:
            errors["reason"] = _("De reden mag hoogstens 2000 tekens zijn")
        if not errors:
            try:
                referral = g.api.referral.CreateReferral(
                    rf_rpc.CreateReferralRequest(
                        parent=name,
                        referral=rf.Referral(
                            offer=offer.name, reason=form["reason"], profile=profile
                        ),
                        request_id=form["request_id"],
                    )
                )
            except grpc.RpcError as err:
                details = backend.details(err)
                if details.code not in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.ALREADY_EXISTS,
                    grpc.StatusCode.FAILED_PRECONDITION,
                ):
                    raise
                messages = list(details.fields.values())
                errors = (
                    {"reason": messages[0]}
                    if messages
                    else {
                        "reason": _(
                            "Deze verwijzing kan niet worden verstuurd (%(reason)s)",
                            reason=details.reason,
                        )
                    }
                )
            else:
                flash(_("De verwijzing is verstuurd naar %(offer)s.", offer=offer.display_name))
                if form["add_to_plan"] == "yes":
                    _add_to_plan(name, referral, offer)
                return redirect(
                    url_for(
                        "verwijzen.detail",
                        patient_id=patient_id,
                        referral_id=referral.name.rsplit("/", 1)[-1],
                    )
                )
    names.organisations([offer.owner_organisation])
    return render_template(
        "verwijzen/refer.html",
        patient_id=patient_id,
        offer=offer,
        values=values,
        form=form,
        form_errors=errors,
    )


def _add_to_plan(patient: str, referral: rf.Referral, offer: rf.Offer) -> None:
    """The referral as an agreed action in the patient's care plan (when the plan exists and
    the referrer may change it); the referral stands either way."""
    user = auth.current_user()
    assert user is not None
    # the referrer's own action (a professional writes only their organisation's actions);
    # careplan keeps its status in step with the referral's
    action = cp.Action(
        description=_("Verwezen naar %(offer)s", offer=offer.display_name),
        kind=cp.ACTION_KIND_REFERRAL,
        status=cp.ACTIVITY_STATUS_SCHEDULED,
        responsible_organisation=f"organisations/{user.organisation}",
        referral=referral.name,
    )
    for _attempt in range(3):
        try:
            plan = g.api.careplan.GetCarePlan(cp_rpc.GetCarePlanRequest(name=f"{patient}/carePlan"))
            plan.actions.append(action)
            g.api.careplan.UpdateCarePlan(
                cp_rpc.UpdateCarePlanRequest(
                    care_plan=plan, update_mask=field_mask_pb2.FieldMask(paths=["actions"])
                )
            )
        except grpc.RpcError as err:
            code = backend.details(err).code
            if code == grpc.StatusCode.ABORTED:
                continue
            flash(
                _("De verwijzing staat nog niet in het zorgplan: dat kon nu niet worden aangepast.")
            )
            return
        flash(_("De verwijzing staat als afspraak in het zorgplan."))
        return


@bp.get("/verwijzingen")
@auth.roles_required(auth.REFERRER_ROLES | auth.OFFER_OWNER_ROLES)
def mine() -> str:
    token = request.args.get("page", "")[:200]
    found = g.api.referral.ListReferrals(
        rf_rpc.ListReferralsRequest(parent="patients/-", page_size=25, page_token=token)
    )
    return render_template(
        "verwijzen/mine.html",
        referrals=found.referrals,
        next_token=found.next_page_token,
        offer_names=_offer_names({r.offer for r in found.referrals}),
    )


def _offer_names(offers: set[str]) -> dict[str, str]:
    """The offers' names for a list of referrals (a page holds few distinct offers); an offer
    that cannot be read shows as its id."""
    found: dict[str, str] = {}
    for name in sorted(offers)[:MAX_OFFER_NAMES]:
        try:
            found[name] = g.api.referral.GetOffer(rf_rpc.GetOfferRequest(name=name)).display_name
        except grpc.RpcError as err:
            if backend.details(err).code in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ):
                break  # the referral service is not answering: the ids will do
    return found


@bp.get("/verwijzingen/<patient_id>/<referral_id>")
@auth.roles_required(auth.REFERRER_ROLES | auth.OFFER_OWNER_ROLES)
def detail(patient_id: str, referral_id: str) -> str:
    name = _patient(patient_id)
    if not REFERRAL_ID.match(referral_id):
        abort(404)
    referral = g.api.referral.GetReferral(
        rf_rpc.GetReferralRequest(name=f"{name}/referrals/{referral_id}")
    )
    offer = g.api.referral.GetOffer(rf_rpc.GetOfferRequest(name=referral.offer))
    names.organisations(
        [
            referral.referrer_organisation,
            referral.target_organisation,
            *(h.actor_organisation for h in referral.history),
        ]
    )
    return render_template(
        "verwijzen/detail.html", referral=referral, offer=offer, patient_id=patient_id
    )

"""Inbox (lifestyle provider, municipality): referrals addressed to my organisation; accept,
reject with a reason, start, put on hold, complete with structured feedback."""

from __future__ import annotations

import grpc
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers.response import Response

from carenet.referral.v1 import referral_pb2 as rf
from carenet.referral.v1 import referral_service_pb2 as rf_rpc
from web import auth, backend
from web.views.verwijzen import REFERRAL_ID, _patient

bp = Blueprint("inbox", __name__, url_prefix="/inbox")
OPEN = (
    rf.REFERRAL_STATUS_REQUESTED,
    rf.REFERRAL_STATUS_ACCEPTED,
    rf.REFERRAL_STATUS_IN_PROGRESS,
    rf.REFERRAL_STATUS_ON_HOLD,
)
# what the target may do next, per status: (status, button text, needs a reason)
MOVES = {
    rf.REFERRAL_STATUS_REQUESTED: ["accept", "reject"],
    rf.REFERRAL_STATUS_ACCEPTED: ["start", "hold", "reject"],
    rf.REFERRAL_STATUS_IN_PROGRESS: ["hold", "complete"],
    rf.REFERRAL_STATUS_ON_HOLD: ["start", "complete"],
}
TARGETS = {
    "accept": rf.REFERRAL_STATUS_ACCEPTED,
    "reject": rf.REFERRAL_STATUS_REJECTED,
    "start": rf.REFERRAL_STATUS_IN_PROGRESS,
    "hold": rf.REFERRAL_STATUS_ON_HOLD,
    "complete": rf.REFERRAL_STATUS_COMPLETED,
}
BUSINESS = {
    "": rf.BUSINESS_STATUS_UNSPECIFIED,
    "could-not-contact": rf.BUSINESS_STATUS_COULD_NOT_CONTACT,
    "not-eligible": rf.BUSINESS_STATUS_NOT_ELIGIBLE,
    "no-capacity": rf.BUSINESS_STATUS_NO_CAPACITY,
    "no-longer-interested": rf.BUSINESS_STATUS_NO_LONGER_INTERESTED,
    "referred-elsewhere": rf.BUSINESS_STATUS_REFERRED_ELSEWHERE,
}


# referrals per Inbox page (ListReferrals, newest first)
PAGE_SIZE = 50


@bp.get("")
@auth.roles_required(auth.OFFER_OWNER_ROLES)
def index() -> str:
    """The referrals addressed to my organisation, newest first, a page at a time
    (ListReferrals across patients: the service asks identity about each one with its
    referral context, as for reading it, so a target sees what it was sent without a care
    relationship)."""
    user = auth.current_user()
    assert user is not None
    mine = f"organisations/{user.organisation}"
    token = request.args.get("page", "")[:200]
    found = g.api.referral.ListReferrals(
        rf_rpc.ListReferralsRequest(parent="patients/-", page_size=PAGE_SIZE, page_token=token)
    )
    rows = [r for r in found.referrals if r.target_organisation == mine]
    return render_template(
        "inbox/index.html",
        open=[r for r in rows if r.status in OPEN],
        closed=[r for r in rows if r.status not in OPEN],
        next_token=found.next_page_token,
        first_page=not token,
    )


def _load(patient_id: str, referral_id: str) -> rf.Referral:
    name = _patient(patient_id)
    if not REFERRAL_ID.match(referral_id):
        abort(404)
    referral: rf.Referral = g.api.referral.GetReferral(
        rf_rpc.GetReferralRequest(name=f"{name}/referrals/{referral_id}")
    )
    return referral


@bp.route("/<patient_id>/<referral_id>", methods=["GET", "POST"])
@auth.roles_required(auth.OFFER_OWNER_ROLES)
def referral(patient_id: str, referral_id: str) -> str | Response:  # noqa: PLR0912
    current = _load(patient_id, referral_id)
    errors: dict[str, str] = {}
    form = {
        k: request.form.get(k, "").strip()
        for k in (
            "move",
            "reason",
            "business_status",
            "attendance",
            "sessions_attended",
            "sessions_planned",
            "result_summary",
            "etag",
        )
    }
    chosen = request.args.get("actie", "") if request.method == "GET" else form["move"]
    if chosen and chosen not in MOVES.get(current.status, []):
        chosen = ""
    if request.method == "POST" and chosen:
        request_ = rf_rpc.TransitionReferralRequest(
            name=current.name, status=TARGETS[chosen], etag=form["etag"]
        )
        if chosen in ("reject", "hold"):
            if not form["reason"]:
                errors["reason"] = _("Vul de reden in")
            request_.reason = form["reason"][:2000]
            request_.business_status = BUSINESS.get(
                form["business_status"], rf.BUSINESS_STATUS_UNSPECIFIED
            )
        if chosen == "complete":
            outcome = rf.ReferralOutcome(result_summary=form["result_summary"][:4000])
            attendance = {
                "none": rf.ATTENDANCE_NONE,
                "partial": rf.ATTENDANCE_PARTIAL,
                "full": rf.ATTENDANCE_FULL,
            }
            if form["attendance"] not in attendance:
                errors["attendance"] = _("Kies hoe de deelname was")
            else:
                outcome.attendance = attendance[form["attendance"]]
            for name in ("sessions_attended", "sessions_planned"):
                try:
                    number = int(form[name])
                except ValueError:
                    errors[name] = _("Vul een heel getal in")
                    continue
                setattr(outcome, name, number)
            if not form["result_summary"]:
                errors["result_summary"] = _("Beschrijf kort het resultaat")
            request_.outcome.CopyFrom(outcome)
        if not errors:
            try:
                g.api.referral.TransitionReferral(request_)
            except grpc.RpcError as err:
                found = backend.details(err)
                if found.code == grpc.StatusCode.ABORTED:
                    flash(
                        _(
                            "Iemand anders heeft deze verwijzing intussen gewijzigd. "
                            "Bekijk de nieuwe stand."
                        )
                    )
                    return redirect(
                        url_for("inbox.referral", patient_id=patient_id, referral_id=referral_id)
                    )
                if found.code not in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.FAILED_PRECONDITION,
                ):
                    raise
                errors = {
                    path.split(".")[-1]: message for path, message in found.fields.items()
                } or {"move": _("Deze stap kan nu niet (%(reason)s)", reason=found.reason)}
            else:
                flash(_("De verwijzing is bijgewerkt: %(status)s.", status=_label(TARGETS[chosen])))
                return redirect(
                    url_for("inbox.referral", patient_id=patient_id, referral_id=referral_id)
                )
    return render_template(
        "inbox/referral.html",
        referral=current,
        patient_id=patient_id,
        moves=MOVES.get(current.status, []),
        chosen=chosen,
        form=form,
        form_errors=errors,
    )


def _label(status: rf.ReferralStatus.ValueType) -> str:
    from web.formatting import REFERRAL_STATUS

    return str(REFERRAL_STATUS[status][0])

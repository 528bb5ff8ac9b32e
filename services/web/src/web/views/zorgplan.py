"""Zorgplan: the patient's individual care plan, for the patient and the professionals
around them. Each person is offered only the parts they may change (careplan's write table:
the patient writes what matters and the consult questions; everyone adds their own goals);
the service refuses anything else anyway. A change made on an older version (ABORTED on the
etag) shows the new version and keeps what the person typed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from google.protobuf import field_mask_pb2
from markupsafe import Markup
from werkzeug.wrappers.response import Response

from carenet.careplan.v1 import careplan_pb2 as cp
from carenet.careplan.v1 import careplan_service_pb2 as cp_rpc
from web import auth, backend, formatting, measures, names
from web.i18n import markup_gettext as _m
from web.views.verwijzen import _patient

bp = Blueprint("zorgplan", __name__)
TEXT_LIMIT = 2000
# careplan's field groups (a revision's changed_fields), in words
CHANGED_FIELDS = {
    "created": _l("Zorgplan gemaakt"),
    "what_matters": _l("Wat belangrijk is"),
    "conditions": _l("Aandoeningen"),
    "participants": _l("Wie meehelpen"),
    "informal_carers": _l("Mantelzorgers"),
    "goals": _l("Doelen"),
    "goals.progress": _l("Voortgang van de doelen"),
    "actions": _l("Afspraken"),
    "evaluations": _l("Evaluatie"),
    "consult_preparation.topics": _l("Voorbereiding op het gesprek"),
    "consult_preparation.agenda": _l("Agenda van het gesprek"),
    "status": _l("Stand van het zorgplan"),
}
PARTICIPANT_ROLES = {
    cp.PARTICIPANT_ROLE_COORDINATING_PRACTITIONER: _l("Hoofdbehandelaar"),
    cp.PARTICIPANT_ROLE_HOSPITAL: _l("Ziekenhuis"),
    cp.PARTICIPANT_ROLE_MUNICIPALITY: _l("Gemeente"),
    cp.PARTICIPANT_ROLE_LIFESTYLE_PROVIDER: _l("Leefstijlprogramma"),
}
SERVICE_AUTHOR_PREFIX = "careplan"  # careplan itself (following a referral, the demo seed)


def _lines(text: str) -> list[str]:
    return [line.strip()[:TEXT_LIMIT] for line in text.splitlines() if line.strip()][:50]


def _page(patient: str, own: bool) -> str | Response:
    plan_name = f"{patient}/carePlan"
    errors: dict[str, str] = {}
    typed: dict[str, str] = {}
    conflict = False
    if request.method == "POST":
        typed = {k: request.form.get(k, "") for k in ("what_matters", "questions", "goal", "etag")}
        current = g.api.careplan.GetCarePlan(cp_rpc.GetCarePlanRequest(name=plan_name))
        if typed["etag"] != current.etag:
            conflict = True
        else:
            update = cp.CarePlan(name=plan_name, etag=typed["etag"])
            paths: list[str] = []
            if own:
                update.what_matters.extend(_lines(typed["what_matters"]))
                update.consult_preparation.CopyFrom(current.consult_preparation)
                del update.consult_preparation.questions[:]
                update.consult_preparation.questions.extend(_lines(typed["questions"]))
                paths += ["what_matters", "consult_preparation.questions"]
            goal = typed["goal"].strip()
            if goal:
                update.goals.extend(current.goals)
                update.goals.append(
                    cp.Goal(
                        description=goal[:TEXT_LIMIT],
                        lifecycle_status=cp.GOAL_LIFECYCLE_STATUS_PROPOSED,
                    )
                )
                paths.append("goals")
            if not paths:
                errors["goal"] = _("Vul een doel in")
            else:
                try:
                    g.api.careplan.UpdateCarePlan(
                        cp_rpc.UpdateCarePlanRequest(
                            care_plan=update, update_mask=field_mask_pb2.FieldMask(paths=paths)
                        )
                    )
                except grpc.RpcError as err:
                    found = backend.details(err)
                    if found.code == grpc.StatusCode.ABORTED:
                        conflict = True
                    elif found.code == grpc.StatusCode.INVALID_ARGUMENT:
                        errors = _field_errors(found.fields)
                    else:
                        raise
                else:
                    flash(_("Het zorgplan is opgeslagen."))
                    return redirect(request.path)
    plan = g.api.careplan.GetCarePlan(cp_rpc.GetCarePlanRequest(name=plan_name))
    return render_template(
        "zorgplan/plan.html",
        plan=plan,
        own=own,
        typed=typed,
        conflict=conflict,
        form_errors=errors,
        history_url=url_for("zorgplan.my_history")
        if own
        else url_for("zorgplan.history", patient_id=patient.split("/")[1]),
        **_shown(plan, own),
    )


def _shown(plan: cp.CarePlan, own: bool) -> dict[str, Any]:
    """The plan's names, labels, targets and dates as the page shows them, worked out here
    in one pass instead of by a call from the template for each (a template's call costs
    several times a Python one). Texts with a translation are what the template's ``_``
    would give (:func:`web.i18n.markup_gettext`); the template escapes the rest."""
    orgs = names.organisations(
        [
            plan.record_holder,
            *(p.organisation for p in plan.participants),
            *(a.responsible_organisation for a in plan.actions),
            *(e.organisation for e in plan.evaluations),
            *(goal.owner for goal in plan.goals if goal.owner.startswith("organisations/")),
        ]
    )
    people = names.look_up_people(
        [
            *(a.responsible_person for a in plan.actions),
            *(person for p in plan.participants for person in p.persons),
        ]
    )

    def org(name: str) -> str:  # as names.organisation_name
        found = names.bare(name)
        return orgs.get(found, found)

    goal_status = formatting.resolved(formatting.GOAL_STATUS)
    goals = [
        (
            goal.description,
            goal_status[goal.lifecycle_status][0] if goal.lifecycle_status in goal_status else "-",
            measures.target(goal.target) if goal.HasField("target") else "",
            _owner(goal.owner, own, org),
        )
        for goal in plan.goals
    ]
    actions = [
        (
            a.description,
            a.referral_state.feedback_summary,
            org(a.responsible_organisation),
            people.get(a.responsible_person, a.responsible_person),
            formatting.status(formatting.ACTIVITY_STATUS, a.status),
        )
        for a in plan.actions
    ]
    roles = formatting.resolved(PARTICIPANT_ROLES)
    participants = [
        (
            org(p.organisation),
            roles[p.role][0] if p.role in roles else "",
            [people.get(person, person) for person in p.persons],
        )
        for p in plan.participants
    ]
    evaluations = [
        (
            formatting.day(e.review_time),
            org(e.organisation) if e.organisation else None,
            e.outcome,
        )
        for e in plan.evaluations
    ]
    title = (
        _m("Mijn zorgplan")
        if own
        else _m("Zorgplan van patiënt %(id)s", id=formatting.last_part(plan.patient))
    )
    prep = plan.consult_preparation
    return {
        "title": title,
        "record_holder": _m(
            "Dit zorgplan wordt bijgehouden door %(org)s.", org=org(plan.record_holder)
        )
        if plan.record_holder
        else None,
        "changed": _m(
            "Laatst veranderd: %(when)s.", when=formatting.when(plan.update_time, "long")
        ),
        "next_consult": _m(
            "Het volgende gesprek is op %(when)s.",
            when=formatting.when(prep.next_consult_time, "long"),
        )
        if prep.HasField("next_consult_time")
        else None,
        "goals": goals,
        "actions": actions,
        "participants": participants,
        "evaluations": evaluations,
    }


def _owner(owner: str, own: bool, org: Callable[[str], str]) -> Markup | None:
    if owner.startswith("organisations/"):
        return _m("Doel van %(org)s", org=org(owner))
    if owner:
        return _m("Uw eigen doel") if own else _m("Doel van de patiënt")
    return None


def _field_errors(fields: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for path, message in fields.items():
        if path.startswith("care_plan.what_matters"):
            errors["what_matters"] = message
        elif path.startswith("care_plan.consult_preparation"):
            errors["questions"] = message
        else:
            errors["goal"] = message
    return errors or {"goal": _("Controleer wat u invulde")}


@bp.route("/zorgplan", methods=["GET", "POST"])
@auth.login_required
def mine() -> str | Response:
    user = auth.current_user()
    assert user is not None
    if not user.is_patient:
        abort(403)
    return _page(f"patients/{user.patient.split('/')[-1]}", own=True)


@bp.route("/patienten/<patient_id>/zorgplan", methods=["GET", "POST"])
@auth.roles_required(auth.PROFESSIONAL_ROLES)
def plan(patient_id: str) -> str | Response:
    return _page(_patient(patient_id), own=False)


def _history(patient: str) -> str:
    found = g.api.careplan.ListCarePlanRevisions(
        cp_rpc.ListCarePlanRevisionsRequest(parent=f"{patient}/carePlan", page_size=100)
    )
    revisions = found.care_plan_revisions
    names.organisations(r.organisation for r in revisions)
    names.look_up_people(r.author for r in revisions)
    user = auth.current_user()
    return render_template(
        "zorgplan/history.html",
        revisions=sorted(revisions, key=lambda r: r.version, reverse=True),
        me=user.subject if user is not None else "",
        changed=_changed,
        by_service=lambda author: author.startswith(SERVICE_AUTHOR_PREFIX),
    )


def _changed(revision: cp.CarePlanRevision) -> str:
    groups = [str(CHANGED_FIELDS.get(f, f)) for f in revision.changed_fields]
    return ", ".join(groups) if groups else _("Geen zichtbare wijziging")


@bp.get("/zorgplan/geschiedenis")
@auth.login_required
def my_history() -> str:
    user = auth.current_user()
    assert user is not None
    if not user.is_patient:
        abort(403)
    return _history(f"patients/{user.patient.split('/')[-1]}")


@bp.get("/patienten/<patient_id>/zorgplan/geschiedenis")
@auth.roles_required(auth.PROFESSIONAL_ROLES)
def history(patient_id: str) -> str:
    return _history(_patient(patient_id))

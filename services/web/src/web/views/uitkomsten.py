"""Uitkomsten (care group, insurer): contracts and their reports; per indicator a chart
(per practice or stratum, with the 95 % interval), the numbers as a table, suppressed cells
shown as suppressed and never as 0, and a CSV download of what the page shows."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from typing import Any

import grpc
from flask import Blueprint, Response, abort, g, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from carenet.outcomes.v1 import outcomes_pb2 as oc
from carenet.outcomes.v1 import outcomes_service_pb2 as oc_rpc
from web import auth, backend, charts

bp = Blueprint("uitkomsten", __name__, url_prefix="/uitkomsten")
REPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
SEX = {oc.SEX_FEMALE: "v", oc.SEX_MALE: "m", oc.SEX_OTHER: "x"}


@bp.get("")
@auth.roles_required(auth.OUTCOME_ROLES)
def index() -> str:
    contracts = g.api.outcomes.ListContracts(oc_rpc.ListContractsRequest(page_size=50))
    reports = g.api.outcomes.ListReports(oc_rpc.ListReportsRequest(page_size=50))
    return render_template(
        "uitkomsten/index.html", contracts=contracts.contracts, reports=reports.reports
    )


def _stratum(cell: oc.ReportCell) -> str:
    parts = [cell.practice.rsplit("/", 1)[-1] if cell.practice else _("zorggroep")]
    if cell.age_band:
        parts.append(cell.age_band)
    if cell.sex:
        parts.append(SEX.get(cell.sex, str(cell.sex)))
    if cell.band:
        parts.append(cell.band)
    return " · ".join(parts)


def _suppressed(cell: oc.ReportCell) -> str:
    if cell.suppression == oc.SUPPRESSION_PRIMARY:
        return "< 10"
    if cell.suppression == oc.SUPPRESSION_COMPLEMENTARY:
        return "x"
    return ""


def _report(report_id: str) -> oc.Report:
    if not REPORT_ID.match(report_id):
        abort(404)
    found: oc.Report = g.api.outcomes.GetReport(
        oc_rpc.GetReportRequest(name=f"reports/{report_id}")
    )
    return found


@bp.get("/rapport/<report_id>")
@auth.roles_required(auth.OUTCOME_ROLES)
def report(report_id: str) -> str:
    found = _report(report_id)
    by_indicator: dict[str, list[oc.ReportCell]] = defaultdict(list)
    for cell in found.cells:
        by_indicator[f"{cell.indicator} v{cell.version}"].append(cell)
    sections: list[dict[str, Any]] = []
    for indicator, cells in sorted(by_indicator.items()):
        bars = [
            charts.Bar(_stratum(c), None, suppressed_text=_suppressed(c))
            if _suppressed(c)
            else charts.Bar(_stratum(c), c.score, c.ci_low, c.ci_high)
            for c in cells
        ]
        shown = [b for b in bars if b.score is not None]
        description = _(
            "%(n)d groepen; %(s)d niet getoond om privacy te beschermen.",
            n=len(bars),
            s=len(bars) - len(shown),
        )
        sections.append(
            {
                "indicator": indicator,
                "chart": charts.bar_chart(
                    f"chart-{len(sections) + 1}", indicator, description, bars
                ),
                "description": description,
                "cells": [(c, _stratum(c), _suppressed(c)) for c in cells],
            }
        )
    discrepancies, evaluation = _contract_views(found)
    return render_template(
        "uitkomsten/report.html",
        report=found,
        sections=sections,
        discrepancies=discrepancies,
        evaluation=evaluation,
        sources=SOURCES,
    )


SOURCES = {
    oc.SOURCE_KIND_KIS: _l("KIS"),
    oc.SOURCE_KIND_LAB: _l("lab"),
    oc.SOURCE_KIND_HOSPITAL: _l("ziekenhuis"),
    oc.SOURCE_KIND_INSURER_CLAIMS: _l("declaraties verzekeraar"),
    oc.SOURCE_KIND_LIFESTYLE_PROVIDER: _l("leefstijlaanbieder"),
    oc.SOURCE_KIND_PATIENT: _l("patiënt (PGO)"),
}
# What a contract view may answer instead of data: shown as "not available", not as an error.
NOT_AVAILABLE = (
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
)


def _contract_views(report: oc.Report) -> tuple[list[Any] | None, Any]:
    """The discrepancy between sources and the financing evaluation of a contract's report;
    None for a part the caller may not see or that cannot be computed (no cost record)."""
    if not report.contract:
        return None, None
    discrepancies: list[Any] | None
    try:
        discrepancies = list(
            g.api.outcomes.GetSourceDiscrepancies(
                oc_rpc.GetSourceDiscrepanciesRequest(
                    contract=report.contract,
                    period_start=report.period_start,
                    period_end=report.period_end,
                )
            ).discrepancies
        )
    except grpc.RpcError as err:
        if backend.details(err).code not in NOT_AVAILABLE:
            raise
        discrepancies = None
    try:
        evaluation = g.api.outcomes.EvaluateContract(
            oc_rpc.EvaluateContractRequest(contract=report.contract, report=report.name)
        )
    except grpc.RpcError as err:
        if backend.details(err).code not in NOT_AVAILABLE:
            raise
        evaluation = None
    return discrepancies, evaluation


@bp.get("/rapport/<report_id>.csv")
@auth.roles_required(auth.OUTCOME_ROLES)
def report_csv(report_id: str) -> Response:
    found = _report(report_id)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(
        [
            "indicator",
            "versie",
            "groep",
            "teller",
            "noemer",
            "score",
            "bi_laag",
            "bi_hoog",
            "onderdrukt",
        ]
    )
    for cell in found.cells:
        hidden = _suppressed(cell)
        if hidden:
            writer.writerow(
                [cell.indicator, cell.version, _stratum(cell), "", "", "", "", "", hidden]
            )
        else:
            writer.writerow(
                [
                    cell.indicator,
                    cell.version,
                    _stratum(cell),
                    cell.numerator,
                    cell.denominator,
                    f"{cell.score:.2f}",
                    f"{cell.ci_low:.2f}",
                    f"{cell.ci_high:.2f}",
                    "",
                ]
            )
    discrepancies, evaluation = _contract_views(found)
    if discrepancies:
        writer.writerow([])
        writer.writerow(
            [
                "indicator",
                "bron_a",
                "bron_b",
                "vergeleken",
                "gelijk",
                "a_hoger",
                "b_hoger",
                "onderdrukt",
            ]
        )
        for d in discrepancies:
            hidden = (
                "< 10"
                if d.suppression == oc.SUPPRESSION_PRIMARY
                else ("x" if d.suppression == oc.SUPPRESSION_COMPLEMENTARY else "")
            )
            counts = [
                d.compared_patients.value if d.HasField("compared_patients") else "",
                d.agreeing_patients.value if d.HasField("agreeing_patients") else "",
                d.a_higher_patients.value if d.HasField("a_higher_patients") else "",
                d.b_higher_patients.value if d.HasField("b_higher_patients") else "",
            ]
            writer.writerow(
                [
                    d.indicator,
                    SOURCES.get(d.source_a, ""),
                    SOURCES.get(d.source_b, ""),
                    *counts,
                    hidden,
                ]
            )
    if evaluation is not None:
        writer.writerow([])
        writer.writerow(["bedrag", "waarde", "formule", "invoer"])
        for line in evaluation.lines:
            inputs = ", ".join(f"{k}={v}" for k, v in sorted(line.inputs.items()))
            writer.writerow([line.label, line.amount, line.formula, inputs])
        writer.writerow(["totaal", evaluation.total_payment, "", ""])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="rapport-{report_id}.csv"'},
    )

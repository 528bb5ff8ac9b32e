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
from web import auth, backend, charts, indicators, names

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
    parts = [names.organisation_name(cell.practice) if cell.practice else _("Zorggroep")]
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


def _scored(cell: oc.ReportCell) -> bool:
    """A cell with a score: not withheld and with eligible patients (a score of 0 is one)."""
    return not _suppressed(cell) and cell.values.HasField("score")


def _bar(cell: oc.ReportCell) -> charts.Bar:
    hidden = _suppressed(cell)
    if hidden:
        return charts.Bar(_stratum(cell), None, suppressed_text=hidden)
    if not _scored(cell):
        return charts.Bar(_stratum(cell), None, suppressed_text="-", empty=True)
    v = cell.values
    return charts.Bar(_stratum(cell), v.score.value, v.ci_low.value, v.ci_high.value)


def _is_overview(cell: oc.ReportCell) -> bool:
    """The care group's total and each practice's, without the strata by age and sex."""
    return not cell.age_band and not cell.sex


def _key_figures(cells: list[oc.ReportCell]) -> dict[str, Any]:
    """What an analyst reads first: the care group's score (per band), how far the practices
    lie apart, and how many groups are withheld."""
    totals = [c for c in cells if not c.practice and _is_overview(c)]
    practices = [c for c in cells if c.practice and _is_overview(c) and _scored(c)]
    scores = [c.values.score.value for c in practices]
    return {
        "totals": [(c, _suppressed(c)) for c in totals],
        "practices": len({c.practice for c in cells if c.practice}),
        "lowest": min(scores) if scores else None,
        "highest": max(scores) if scores else None,
        "withheld": sum(1 for c in cells if _suppressed(c)),
        "groups": len(cells),
    }


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
    names.organisations(c.practice for c in found.cells if c.practice)
    by_indicator: dict[tuple[str, int], list[oc.ReportCell]] = defaultdict(list)
    for cell in found.cells:
        by_indicator[(cell.indicator, cell.version)].append(cell)
    described = indicators.describe({code for code, _version in by_indicator})
    sections: list[dict[str, Any]] = []
    for number, ((code, version), cells) in enumerate(sorted(by_indicator.items()), start=1):
        about = described[code]
        indicator = f"{about.title} ({code} v{version})"
        unit = "%" if about.percent else ""
        bars = [_bar(c) for c in cells]
        shown = [b for b in bars if b.score is not None]
        withheld = sum(1 for c in cells if _suppressed(c))
        description = _(
            "%(n)d groepen; %(s)d niet getoond om privacy te beschermen.",
            n=len(bars),
            s=withheld,
        )
        overview = [c for c in cells if _is_overview(c)]
        overview_withheld = sum(1 for c in overview if _suppressed(c))
        overview_description = _(
            "De zorggroep en elke praktijk: %(n)d groepen; %(s)d niet getoond om privacy te "
            "beschermen.",
            n=len(overview),
            s=overview_withheld,
        )
        strata = [c for c in cells if not _is_overview(c)]
        sections.append(
            {
                "number": number,
                "indicator": indicator,
                "title": about.title,
                "code": f"{code} v{version}",
                "percent": about.percent,
                "chart": charts.bar_chart(f"chart-{number}", indicator, description, bars, unit),
                "description": description,
                "shown": len(shown),
                "overview_chart": charts.bar_chart(
                    f"chart-{number}-overview",
                    indicator,
                    overview_description,
                    [_bar(c) for c in overview],
                    unit,
                    compact=True,
                ),
                "overview_description": overview_description,
                "key": _key_figures(cells),
                "cells": [(c, _stratum(c), _suppressed(c)) for c in cells],
                "overview": [(c, _stratum(c), _suppressed(c)) for c in overview],
                "strata": [(c, _stratum(c), _suppressed(c)) for c in strata],
            }
        )
    discrepancies, evaluation = _contract_views(found)
    return render_template(
        "uitkomsten/report.html",
        report=found,
        contract=_contract_name(found),
        rate_unit=indicators.RATE_UNIT,
        sections=sections,
        discrepancies=discrepancies,
        evaluation=evaluation,
        sources=SOURCES,
    )


def _contract_name(report: oc.Report) -> str:
    """The contract's name for the page's title; empty when there is none to show."""
    if not report.contract:
        return ""
    try:
        contract = g.api.outcomes.GetContract(oc_rpc.GetContractRequest(name=report.contract))
    except grpc.RpcError as err:
        if backend.details(err).code not in NOT_AVAILABLE:
            raise
        return ""
    return str(contract.display_name)


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
    names.organisations(c.practice for c in found.cells if c.practice)
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
            v = cell.values
            scored = v.HasField("score")
            writer.writerow(
                [
                    cell.indicator,
                    cell.version,
                    _stratum(cell),
                    v.numerator,
                    v.denominator,
                    f"{v.score.value:.2f}" if scored else "",
                    f"{v.ci_low.value:.2f}" if scored else "",
                    f"{v.ci_high.value:.2f}" if scored else "",
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

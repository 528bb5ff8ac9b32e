"""Reports: indicators computed over a period (for a contract or the whole care group),
their cells protected by the small-cell rule (outcomes.protection), stored with the inputs
and a hash so that VerifyReport recomputes them; read by the care group's report readers,
a practice seeing only its own strata and the totals."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from outcomes import errors, indicators, positions, protection_over_time, reporting
from outcomes.base import (
    ADMIN,
    INSURER,
    PRACTICE_ROLES,
    REPORT_READERS,
    care_group_of,
    check_period,
    organisation_of,
)
from outcomes.deps import Deps
from outcomes.models import (
    DEFAULT_SOURCE_PRIORITY,
    Contract,
    Report,
    SourceKind,
    Stratifier,
    canonical_json,
    sha256_hex,
)
from outcomes.unit_of_work import UnitOfWork
from outcomes.use_cases.contracts import visible_contract
from servicekit.auth import Principal
from servicekit.errors import Violations
from servicekit.paging import Page, PageRequest

PROTECTION_RULE = "strata-v4"
# Reports compared with at most: every report of the contract (or every care-group report
# of a care group) computed before, whatever its period (protection_over_time.Earlier).


def period_of(
    period_start: dt.datetime | None, period_end: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    v = Violations()
    check_period(period_start, period_end, v)
    v.raise_if_any()
    assert period_start is not None and period_end is not None
    return period_start, period_end


def scope_plan(uow: UnitOfWork, contract: Contract | None) -> list[dict[str, Any]]:
    """(indicator, version, sources) the computation uses."""
    if contract is not None:
        return [
            {"indicator": t["indicator"], "version": t["version"], "sources": t["sources"]}
            for t in contract.terms["indicators"]
        ]
    return [
        {
            "indicator": code,
            "version": record.version,
            "sources": [s.value for s in DEFAULT_SOURCE_PRIORITY],
        }
        for code, record in sorted(uow.repo.latest_definitions().items())
    ]


def compute_cells(uow: UnitOfWork, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """The published cells for recorded inputs: the same inputs give the same cells."""
    period_end = dt.datetime.fromisoformat(inputs["period_end"])
    cutoff = dt.datetime.fromisoformat(inputs["data_cutoff"])
    results = []
    for item in inputs["plan"]:
        record = uow.repo.definition(item["indicator"], item["version"])
        if record is None:
            raise errors.IndicatorNotFound("indicator definition not found")
        definition = indicators.parse(record.definition)
        sources = [SourceKind(s) for s in item["sources"]]
        w = indicators.window(definition, period_end)
        rows = uow.repo.run_indicator(
            indicators.build_sql(definition, sources),
            {
                "cg": inputs["care_group"],
                "ref_year": w.ref_year,
                "enrolled_by": w.enrolled_by,
                "window_start": w.window_start,
                "period_end": w.period_end,
                "cutoff": cutoff,
            },
        )
        results.append(
            (
                definition,
                [
                    reporting.FineRow(
                        str(r[0]),
                        str(r[1]),
                        str(r[2]),
                        str(r[3] or ""),
                        int(r[4]),
                        int(r[5] or 0),
                        int(r[6] or 0),
                    )
                    for r in rows
                ],
            )
        )
    agreed = {item["indicator"]: item["sources"] for item in inputs["plan"]}
    # The rule the report recorded (strata-v2 reports recompute under strata-v2).
    rule = str(inputs.get("protection", "strata-v2"))
    history = earlier_of(uow, inputs.get("history", [])) if rule == "strata-v4" else []
    return reporting.build_cells(results, inputs["stratifiers"], agreed, rule, history)


def history_of(uow: UnitOfWork, care_group: str, contract: Contract | None) -> list[Report]:
    """The reports a new report is compared with (rule strata-v4): every report of the same
    contract computed before it, whatever its period or rule (an insurer holds them all);
    for a care-group report, every earlier care-group report of the care group."""
    if contract is not None:
        found = uow.repo.reports(care_group, [contract.id], None, 1_000_000)
    else:
        found = [
            r for r in uow.repo.reports(care_group, None, None, 1_000_000) if r.contract_id is None
        ]
    return sorted(found, key=lambda r: (r.create_time, r.id))


def earlier_of(
    uow: UnitOfWork, recorded: Sequence[dict[str, str]]
) -> list[protection_over_time.Earlier]:
    """The recorded earlier reports as the protection compares them: one per data (period
    end and cut-off), the cells of its differently stratified reports together."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for item in recorded:
        report = uow.repo.report(item["report"])
        if report is None or report.content_hash != item["content_hash"]:
            raise errors.ReportNotFound("a report this report was compared with is missing")
        inputs = report.inputs
        data = merged.setdefault(
            (inputs["period_end"], inputs["data_cutoff"]),
            {"shown": {}, "withheld": set(), "stratifiers": set()},
        )
        data["stratifiers"].add(tuple(sorted(inputs["stratifiers"])))
        for c in report.cells:
            unit = (c["indicator"], (c["practice"], c["age_band"], c["sex"]), c["band"])
            if c["suppression"] == "none":
                data["shown"][unit] = (c["denominator"], c["exclusions"], c["numerator"])
            else:
                data["withheld"].add(unit)
    out = []
    for _data, data in sorted(merged.items()):
        shown = tuple(sorted((*unit, *counts) for unit, counts in data["shown"].items()))
        withheld = tuple(sorted(data["withheld"] - set(data["shown"])))
        out.append(
            protection_over_time.Earlier(shown, withheld, tuple(sorted(data["stratifiers"])))
        )
    return out


def report_hash(inputs: dict[str, Any], cells: list[dict[str, Any]]) -> str:
    return sha256_hex(canonical_json({"inputs": inputs, "cells": cells}))


def may_compute(principal: Principal, contract: Contract | None) -> None:
    if principal.has_role(ADMIN):
        return
    if principal.has_role(INSURER) and contract is not None:
        return  # visible_contract already checked it is the insurer's own
    raise errors.RoleNotPermitted(
        "only the care group's administrator or the contract's insurer computes reports"
    )


def compute_indicators(
    deps: Deps,
    principal: Principal,
    contract_id: str,
    period_start: dt.datetime | None,
    period_end: dt.datetime | None,
    stratifiers: Sequence[Stratifier],
) -> Report:
    start, end = period_of(period_start, period_end)
    now = deps.clock()
    with deps.uow() as uow:
        contract = visible_contract(uow, principal, contract_id) if contract_id else None
        may_compute(principal, contract)
        # One report of a contract at a time, so that each is compared with all before it.
        uow.repo.lock_report_history(care_group_of(principal), contract.id if contract else None)
        wanted = sorted({s.value for s in stratifiers} or {Stratifier.PRACTICE.value})
        inputs = {
            "care_group": care_group_of(principal),
            "contract": contract.id if contract else "",
            "contract_terms_hash": sha256_hex(contract.terms_json) if contract else "",
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "data_cutoff": now.isoformat(),
            "stratifiers": wanted,
            "plan": scope_plan(uow, contract),
            # The small-cell rule the cells were protected with (protection.py); reports
            # computed before it carry none and do not recompute to their hash.
            "protection": PROTECTION_RULE,
            # The earlier reports whose cells this one was compared with (strata-v4).
            "history": [
                {"report": r.id, "content_hash": r.content_hash}
                for r in history_of(uow, care_group_of(principal), contract)
            ],
        }
        cells = compute_cells(uow, inputs)
        report = Report(
            id=uuid.uuid4().hex,
            care_group_id=inputs["care_group"],
            contract_id=contract.id if contract else None,
            period_start=start,
            period_end=end,
            data_cutoff=now,
            inputs_json=canonical_json(inputs),
            cells_json=canonical_json(cells),
            content_hash=report_hash(inputs, cells),
            cell_count=len(cells),
            create_time=now,
        )
        uow.repo.add(report)
        uow.commit()
        return report


def visible_report(uow: UnitOfWork, principal: Principal, report_id: str) -> Report:
    if not principal.roles & REPORT_READERS:
        raise errors.RoleNotPermitted("this role does not read reports")
    report = uow.repo.report(report_id)
    if report is None or report.care_group_id != care_group_of(principal):
        raise errors.ReportNotFound("report not found")
    if principal.has_role(INSURER) and not principal.has_role(ADMIN):
        contract = uow.repo.contract(report.contract_id) if report.contract_id else None
        if contract is None or not contract.visible_to_insurer(organisation_of(principal)):
            raise errors.ReportNotFound("report not found")
    return report


def visible_cells(principal: Principal, report: Report) -> list[dict[str, Any]]:
    """A practice sees its own strata and the care-group totals; others see every cell."""
    cells = report.cells
    if principal.roles & PRACTICE_ROLES and not principal.roles & {
        ADMIN,
        INSURER,
        "auditor",
        "service",
    }:
        own = organisation_of(principal)
        return [c for c in cells if c["practice"] in ("", own)]
    return cells


def get_report(
    deps: Deps, principal: Principal, report_id: str
) -> tuple[Report, list[dict[str, Any]]]:
    with deps.uow() as uow:
        report = visible_report(uow, principal, report_id)
    return report, visible_cells(principal, report)


def stream_report(deps: Deps, principal: Principal, report_id: str) -> Iterator[dict[str, Any]]:
    _report, cells = get_report(deps, principal, report_id)
    yield from cells


def list_reports(
    deps: Deps, principal: Principal, contract_id: str, page: PageRequest
) -> Page[Report]:
    if not principal.roles & REPORT_READERS:
        raise errors.RoleNotPermitted("this role does not read reports")
    with deps.uow() as uow:
        contract_ids: list[str] | None = None
        if contract_id:
            contract_ids = [visible_contract(uow, principal, contract_id).id]
        elif principal.has_role(INSURER) and not principal.has_role(ADMIN):
            contract_ids = [
                c.id
                for c in uow.repo.contracts(
                    care_group_of(principal), organisation_of(principal), None, 10_000
                )
            ]
        after = positions.after_report(page.position)
        items = uow.repo.reports(care_group_of(principal), contract_ids, after, page.limit)
    return Page.of(items, page, lambda r: {"t": r.create_time.isoformat(), "id": r.id})


@dataclass(frozen=True)
class Verification:
    reproduced: bool
    stored_hash: str
    recomputed_hash: str


def verify_report(deps: Deps, principal: Principal, report_id: str) -> Verification:
    with deps.uow() as uow:
        report = visible_report(uow, principal, report_id)
        inputs = report.inputs
        cells = compute_cells(uow, inputs)
    recomputed = report_hash(inputs, cells)
    return Verification(recomputed == report.content_hash, report.content_hash, recomputed)

"""GetSourceDiscrepancies: per indicator and pair of sources, how many patients in the
denominator under both would be scored differently, and which source scores higher.
Computed per patient inside the service; only the four counts leave, protected as one
line (suppression.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from outcomes import indicators
from outcomes.base import care_group_of
from outcomes.deps import Deps
from outcomes.models import SourceKind
from outcomes.suppression import Key, is_small, protect
from outcomes.unit_of_work import UnitOfWork
from outcomes.use_cases.contracts import visible_contract
from outcomes.use_cases.reports import may_compute, period_of, scope_plan
from servicekit.auth import Principal


@dataclass(frozen=True)
class Discrepancy:
    indicator: str
    source_a: str
    source_b: str
    compared: int | None
    agree: int | None
    a_higher: int | None
    b_higher: int | None
    suppression: str


def _patient_results(
    uow: UnitOfWork,
    definition: indicators.Definition,
    source: SourceKind,
    care_group: str,
    end: dt.datetime,
    cutoff: dt.datetime,
) -> dict[str, tuple[int, int, str]]:
    w = indicators.window(definition, end)
    rows = uow.repo.run_indicator(
        indicators.build_patient_sql(definition, [source]),
        {
            "cg": care_group,
            "ref_year": w.ref_year,
            "enrolled_by": w.enrolled_by,
            "window_start": w.window_start,
            "period_end": w.period_end,
            "cutoff": cutoff,
        },
    )
    return {str(r[0]): (int(r[1]), int(r[2]), str(r[3] or "")) for r in rows}


def _rank(definition: indicators.Definition, result: tuple[int, int, str]) -> int:
    _excl, num, band = result
    if definition.kind == "bands":
        return definition.band_labels.index(band) if band in definition.band_labels else -1
    return num


def source_discrepancies(
    deps: Deps,
    principal: Principal,
    contract_id: str,
    period_start: dt.datetime | None,
    period_end: dt.datetime | None,
) -> list[Discrepancy]:
    """Per indicator and pair of sources: among patients in the denominator under both, how
    many would be scored differently, and which source scores higher. Aggregates only,
    suppressed like report cells (the three counts and their total form one line)."""
    _start, end = period_of(period_start, period_end)
    now = deps.clock()
    out: list[Discrepancy] = []
    with deps.uow() as uow:
        contract = visible_contract(uow, principal, contract_id) if contract_id else None
        may_compute(principal, contract)
        care_group = care_group_of(principal)
        for item in scope_plan(uow, contract):
            record = uow.repo.definition(item["indicator"], item["version"])
            assert record is not None
            definition = indicators.parse(record.definition)
            kinds = [SourceKind(k) for k in uow.repo.source_kinds(care_group, definition.codes())]
            per_source = {
                k: _patient_results(uow, definition, k, care_group, end, now) for k in kinds
            }
            for i, a in enumerate(kinds):
                for b in kinds[i + 1 :]:
                    ra, rb = per_source[a], per_source[b]
                    both = [p for p in ra if p in rb and ra[p][0] == 0 and rb[p][0] == 0]
                    a_hi = sum(
                        1 for p in both if _rank(definition, ra[p]) > _rank(definition, rb[p])
                    )
                    b_hi = sum(
                        1 for p in both if _rank(definition, ra[p]) < _rank(definition, rb[p])
                    )
                    out.append(_protected(definition.code, a, b, len(both), a_hi, b_hi))
    return out


def _protected(
    code: str, a: SourceKind, b: SourceKind, total: int, a_hi: int, b_hi: int
) -> Discrepancy:
    values: dict[Key, int] = {
        ("",): total,
        ("agree",): total - a_hi - b_hi,
        ("a",): a_hi,
        ("b",): b_hi,
    }
    primary = {k for k, x in values.items() if is_small(x)}
    first, extra = protect(values, primary, cost=lambda k: (k == ("",), values[k]))
    hidden = first | extra
    if hidden:
        return Discrepancy(
            code,
            a.value,
            b.value,
            None if ("",) in hidden else total,
            None,
            None,
            None,
            "primary" if first else "complementary",
        )
    return Discrepancy(code, a.value, b.value, total, total - a_hi - b_hi, a_hi, b_hi, "none")

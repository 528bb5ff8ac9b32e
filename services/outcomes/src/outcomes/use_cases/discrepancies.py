"""GetSourceDiscrepancies: per indicator and pair of sources, how many patients in the
denominator under both would be scored differently, and which source scores higher.
Computed per patient inside the service; only the four counts leave, under the small-cell
rule of the reports (protect_lines):

- a line shows its four counts only when none of them, and none a reader derives from the
  line and the population's size, is small (1 to 9): compared, agreeing, higher on A,
  higher on B, the disagreeing (compared - agreeing), compared - higher on A, compared -
  higher on B, and the population's patients not compared (population - compared);
- a withheld line shows at most its compared count, and only when that count and the
  population minus it are not small;
- across lines of one population (every indicator and every pair of sources), no two shown
  compared counts differ by 1 to 9: compared patients of one line are often a subset of
  another's (the same pair for an indicator with an exclusion more), so their difference
  is a count of patients. Lines are decided in the response's order; a line whose compared
  count would differ by a small count from one shown earlier is withheld whole."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from outcomes import indicators
from outcomes.base import care_group_of
from outcomes.deps import Deps
from outcomes.models import SourceKind
from outcomes.suppression import is_small
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
    lines: list[Line] = []
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
                    lines.append(
                        Line(
                            definition.code,
                            definition.population_key,
                            a,
                            b,
                            len(ra),
                            len(both),
                            a_hi,
                            b_hi,
                        )
                    )
    return protect_lines(lines)


@dataclass(frozen=True)
class Line:
    indicator: str
    population: str
    a: SourceKind
    b: SourceKind
    size: int  # patients in the population
    total: int
    a_hi: int
    b_hi: int

    def counts(self) -> list[int]:
        agree = self.total - self.a_hi - self.b_hi
        t = self.total
        return [t, agree, self.a_hi, self.b_hi, t - agree, t - self.a_hi, t - self.b_hi]


def protect_lines(lines: list[Line]) -> list[Discrepancy]:
    """The lines as shown (see the module)."""
    shown: dict[str, list[int]] = {}
    out = []
    for line in lines:
        earlier = shown.setdefault(line.population, [])
        total_ok = not is_small(line.total) and not is_small(line.size - line.total)
        total_ok = total_ok and not any(is_small(abs(line.total - t)) for t in earlier)
        whole = total_ok and not any(is_small(c) for c in line.counts())
        if total_ok:
            earlier.append(line.total)
        if whole:
            agree = line.total - line.a_hi - line.b_hi
            out.append(
                Discrepancy(
                    line.indicator,
                    line.a.value,
                    line.b.value,
                    line.total,
                    agree,
                    line.a_hi,
                    line.b_hi,
                    "none",
                )
            )
            continue
        primary = any(is_small(c) for c in [*line.counts(), line.size - line.total])
        out.append(
            Discrepancy(
                line.indicator,
                line.a.value,
                line.b.value,
                line.total if total_ok else None,
                None,
                None,
                None,
                "primary" if primary else "complementary",
            )
        )
    return out

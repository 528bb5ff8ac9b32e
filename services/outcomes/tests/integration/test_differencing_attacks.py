"""Differencing attacks on real reports: total minus the other strata, repeated along every
line of the table, across reports with overlapping stratifications. No suppressed count
may be recovered, and the exact linear-algebra test agrees."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import text

from outcomes import indicators, reporting, service
from outcomes.models import DEFAULT_SOURCE_PRIORITY, Stratifier
from outcomes.suppression import Key, determined, lines_of
from servicekit.auth import Principal

from . import region

CARE_GROUP = "cg-attack"
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ADMIN = Principal(
    subject="admin-attack",
    client_id="test",
    organisation=f"organisations/{CARE_GROUP}",
    care_group=f"organisations/{CARE_GROUP}",
    roles=frozenset({"care-group-admin"}),
)
STRATIFICATIONS = [
    [Stratifier.PRACTICE],
    [Stratifier.PRACTICE, Stratifier.SEX],
    [Stratifier.PRACTICE, Stratifier.AGE_BAND],
    [Stratifier.AGE_BAND, Stratifier.SEX],
    [Stratifier.PRACTICE, Stratifier.AGE_BAND, Stratifier.SEX],
]


@pytest.fixture(scope="module")
def published_cells(deps: service.Deps) -> list[dict[str, Any]]:
    with deps.uow() as uow:
        region.build(uow, CARE_GROUP, seed=11, stamp=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
        uow.commit()
    with deps.uow() as uow:
        uow.session.execute(text("ANALYZE measurements"))
        uow.commit()
    cells: list[dict[str, Any]] = []
    for stratifiers in STRATIFICATIONS:
        cells.extend(service.compute_indicators(deps, ADMIN, "", START, END, stratifiers).cells)
    return cells


def _attack(known: dict[Key, int], unknown: set[Key]) -> set[Key]:
    known = dict(known)
    unknown = set(unknown)
    recovered: set[Key] = set()
    lines = lines_of([*known, *unknown])
    progress = True
    while progress:
        progress = False
        for parent, kids in lines:
            missing = [k for k in (parent, *kids) if k in unknown]
            if len(missing) != 1:
                continue
            (m,) = missing
            known[m] = (
                sum(known[k] for k in kids)
                if m == parent
                else known[parent] - sum(known[k] for k in kids if k != m)
            )
            unknown.discard(m)
            recovered.add(m)
            progress = True
    return recovered


def _tables(
    cells: list[dict[str, Any]],
) -> dict[tuple[str, str, str], tuple[dict[Key, int], set[Key]]]:
    """(indicator, band, measure) -> (published values, suppressed keys), over all reports."""
    tables: dict[tuple[str, str, str], tuple[dict[Key, int], set[Key]]] = defaultdict(
        lambda: ({}, set())
    )
    for c in cells:
        key = (c["practice"], c["age_band"], c["sex"])
        for measure in ("numerator", "denominator", "exclusions"):
            published, hidden = tables[(c["indicator"], c["band"], measure)]
            if c["suppression"] == "none":
                published[key] = c[measure]
            else:
                hidden.add(key)
    return tables


def test_the_reports_do_suppress_small_cells(published_cells: list[dict[str, Any]]) -> None:
    states = {c["suppression"] for c in published_cells}
    assert {"none", "primary", "complementary"} <= states
    for c in published_cells:
        if c["suppression"] == "none":
            assert all(not 0 < c[m] < 10 for m in ("numerator", "denominator", "exclusions"))


def test_no_suppressed_count_is_recovered_by_subtraction_across_stratifications(
    published_cells: list[dict[str, Any]],
) -> None:
    tables = _tables(published_cells)
    attacked = 0
    for (indicator, band, measure), (published, suppressed) in tables.items():
        hidden = suppressed - set(published)  # a key published in one report is not secret
        # Cells published by every report agree with each other.
        recovered = _attack(published, hidden)
        assert recovered == set(), (indicator, band, measure, sorted(recovered)[:3])
        attacked += len(hidden)
    assert attacked > 100


def test_no_suppressed_cell_is_determined_by_any_combination_of_lines(
    published_cells: list[dict[str, Any]],
) -> None:
    for (indicator, band, measure), (published, suppressed) in _tables(published_cells).items():
        hidden = suppressed - set(published)
        lines = lines_of([*published, *hidden])
        assert determined(hidden, lines) == set(), (indicator, band, measure)


def test_a_key_is_never_published_in_one_report_and_suppressed_in_another(
    published_cells: list[dict[str, Any]],
) -> None:
    seen: dict[tuple[str, str, Key], str] = {}
    for c in published_cells:
        k = (c["indicator"], c["band"], (c["practice"], c["age_band"], c["sex"]))
        state = "shown" if c["suppression"] == "none" else "hidden"
        assert seen.setdefault(k, state) == state, k


def _true_denominators(deps: service.Deps, code: str) -> dict[Key, int]:
    with deps.uow() as uow:
        definition = indicators.parse(uow.repo.latest_definitions()[code].definition)
        w = indicators.window(definition, END)
        rows = uow.repo.run_indicator(
            indicators.build_sql(definition, list(DEFAULT_SOURCE_PRIORITY)),
            {
                "cg": CARE_GROUP,
                "ref_year": w.ref_year,
                "enrolled_by": w.enrolled_by,
                "window_start": w.window_start,
                "period_end": END,
                "cutoff": dt.datetime.now(dt.UTC),
            },
        )
    fine = [
        reporting.FineRow(r[0], r[1], r[2], r[3] or "", int(r[4]), int(r[5]), int(r[6]))
        for r in rows
    ]
    return {k: c.den for k, c in reporting.strata(fine).items()}


@pytest.mark.parametrize(
    ("prefix", "probe"), [("DM2_", "DM2_HBA1C_MEASURED"), ("COPD_", "COPD_LUNG_FUNCTION")]
)
def test_small_denominators_shared_by_indicators_of_one_population_stay_protected(
    deps: service.Deps, published_cells: list[dict[str, Any]], prefix: str, probe: str
) -> None:
    """Indicators over one population publish the same denominators. Combining all of them
    may reveal the denominator of a cell hidden only for its numerator (that is not secret),
    but never a small one, nor one hidden to protect a small one."""
    truth = _true_denominators(deps, probe)
    published: dict[Key, int] = {}
    hidden: set[Key] = set()
    for c in published_cells:
        if not c["indicator"].startswith(prefix):
            continue
        key = (c["practice"], c["age_band"], c["sex"])
        if c["suppression"] == "none":
            assert published.setdefault(key, c["denominator"]) == c["denominator"] == truth[key]
        else:
            hidden.add(key)
    hidden -= set(published)
    small = {k for k in hidden if 0 < truth[k] < 10}
    assert small
    assert _attack(published, hidden) & small == set()
    assert determined(hidden, lines_of([*published, *hidden])) & small == set()

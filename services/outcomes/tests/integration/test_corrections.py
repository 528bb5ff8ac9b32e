"""A corrected measurement on real PostgreSQL (issue 11, point 9): reports computed after
the correction use the new value, a report computed before it still recomputes to its hash
(the generated SQL reads the value each measurement had at the report's data cut-off)."""

from __future__ import annotations

import datetime as dt

from outcomes import indicators
from outcomes.deps import Deps
from outcomes.models import Programme, Sex, SourceKind
from outcomes.repository import Correction, MeasurementKey, unix_micros
from outcomes.use_cases import enrolments, reports
from servicekit.principals import care_group_admin

CARE_GROUP = "cg-fix"
END = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ADMIN = care_group_admin(CARE_GROUP, "admin-fix", client_id="test")
KEY = MeasurementKey("fix-1", "HBA1C", "mmol/mol", "LAB", "lab-fix")


def _at_target(deps: Deps, cutoff: dt.datetime) -> int:
    """DM2_HBA1C_AT_TARGET's numerator over the care group at a data cut-off."""
    with deps.uow() as uow:
        d = indicators.parse(uow.repo.latest_definitions()["DM2_HBA1C_AT_TARGET"].definition)
        w = indicators.window(d, END)
        rows = uow.repo.run_indicator(
            indicators.build_sql(d, [SourceKind.LAB]),
            {
                "cg": CARE_GROUP,
                "ref_year": w.ref_year,
                "enrolled_by": w.enrolled_by,
                "window_start": w.window_start,
                "period_end": END,
                "cutoff": cutoff,
            },
        )
    return sum(int(r[6] or 0) for r in rows)


def test_reports_use_the_corrected_value_and_earlier_reports_still_verify(
    deps: Deps,
) -> None:
    now = dt.datetime.now(dt.UTC)
    with deps.uow() as uow:
        enrolments.store_enrolment(
            uow,
            CARE_GROUP,
            enrolments.EnrolmentInput(
                "fix-1",
                Programme.DM2,
                "prac-fix",
                "01000009",
                dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                "",
                1970,
                Sex.FEMALE,
            ),
            now - dt.timedelta(hours=2),
        )
        when = unix_micros(dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
        taken = uow.repo.insert_measurement_rows(
            CARE_GROUP, "prac-fix", now - dt.timedelta(hours=1), [(KEY, 61.0, when, "corrected-r1")]
        )
        assert taken == {}
        uow.commit()
    before = reports.compute_indicators(
        deps, ADMIN, "", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), END, []
    )
    assert _at_target(deps, before.data_cutoff) == 0  # 61 is above target
    corrected_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    with deps.uow() as uow:
        (stored,) = uow.repo.insert_measurement_rows(
            CARE_GROUP, "prac-fix", corrected_at, [(KEY, 50.0, when, "corrected-r1")]
        ).values()
        uow.repo.correct_measurements([Correction(stored, 50.0, when)], corrected_at)
        uow.commit()
    assert _at_target(deps, corrected_at) == 1  # from the correction on: 50, at target
    assert _at_target(deps, before.data_cutoff) == 0  # at the earlier cut-off: still 61
    assert reports.verify_report(deps, ADMIN, before.id).reproduced

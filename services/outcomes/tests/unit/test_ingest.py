"""IngestMeasurements as a use case: per-row results, identity's decisions, idempotence.
Runs over the in-memory fake repository with a fake identity client."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from outcomes import errors
from outcomes.deps import Deps
from outcomes.models import Programme, Sex, SourceKind
from outcomes.repository import from_micros
from outcomes.use_cases import enrolments
from outcomes.use_cases import measurements as ingest_uc
from servicekit.authorization import AccessRefused
from servicekit.identity_client import Access, AccessDecision, AccessQuestion
from testkit.fakes import FakeIdentity, fake_principal

from ..fakes import FixedClock, Store, enrolled, fake_deps, fake_repository

NOW = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
GP = fake_principal("u-jansen", roles=["gp"], organisation="gp-de-linde")
INSURER = fake_principal("u-peters", roles=["insurer-analyst"], organisation="ins-vgz")


@pytest.fixture
def identity() -> FakeIdentity:
    return FakeIdentity(permitted={"p-1", "p-2", "p-3"}, unknown={"p-404"})


@pytest.fixture
def stored_rows(identity: FakeIdentity) -> tuple[Deps, Store]:
    deps, store = fake_deps(identity, FixedClock(NOW), chunk=7)
    enrolled(deps, ("p-1", "p-2"), NOW)
    return deps, store


@pytest.fixture
def deps(stored_rows: tuple[Deps, Store]) -> Deps:
    return stored_rows[0]


@pytest.fixture
def store(stored_rows: tuple[Deps, Store]) -> Store:
    return stored_rows[1]


def row(patient: str = "p-1", record: str = "r1", **overrides: Any) -> ingest_uc.MeasurementInput:
    values: dict[str, Any] = {
        "patient": f"patients/{patient}",
        "code": "HBA1C",
        "value": 52.0,
        "unit": "mmol/mol",
        "measure_time": NOW - dt.timedelta(days=3),
        "source_kind": SourceKind.LAB,
        "source_org": "organisations/lab-eindhoven",
        "source_record_id": record,
    }
    return ingest_uc.MeasurementInput(**(values | overrides))


def test_every_good_row_is_stored_and_every_bad_row_reported_with_its_reason(
    deps: Deps, store: Store
) -> None:
    rows = [
        row(record="ok-1"),
        row(record="bad-code", code="HBA1X"),
        row(record="bad-unit", unit="%"),
        row(record="bad-range", value=250.0),
        row(record="future", measure_time=NOW + dt.timedelta(hours=1)),
        row(record="ok-2", patient="p-2"),
        row("p-3", record="not-enrolled"),
        row("p-9", record="denied"),
        row("p-404", record="unknown"),
        row(record="", source_kind=SourceKind.KIS),
        row(record="bad-source", source_org="lab"),
        row(record="ok-3", code="SBP", value=135.0, unit="mm[Hg]"),
    ]
    result = ingest_uc.ingest(deps, GP, [rows])
    assert result.accepted == 3
    assert result.rejected == 9
    assert {(r.row, r.reason, r.field) for r in result.results} == {
        (1, "UNKNOWN_CODE", "code"),
        (2, "WRONG_UNIT", "unit"),
        (3, "OUT_OF_RANGE", "value"),
        (4, "FUTURE_TIME", "measure_time"),
        (6, "NOT_ENROLLED", "patient"),
        # One reason whether the patient exists or not (issue 11, point 6).
        (7, "NO_CARE_RELATIONSHIP", "patient"),
        (8, "NO_CARE_RELATIONSHIP", "patient"),
        (9, "SOURCE_RECORD_ID_REQUIRED", "source_record_id"),
        (10, "INVALID_SOURCE", "source.organisation"),
    }
    assert len(store.measurements) == 3


def test_a_retried_batch_adds_nothing_and_reports_duplicates(deps: Deps, store: Store) -> None:
    rows = [row(record=f"r{i}", value=40.0 + i) for i in range(20)]
    first = ingest_uc.ingest(deps, GP, [rows[:10], rows[10:]])
    again = ingest_uc.ingest(deps, GP, [rows])
    assert (first.accepted, first.duplicates) == (20, 0)
    assert (again.accepted, again.duplicates) == (0, 20)
    assert len(store.measurements) == 20


def test_the_same_record_twice_in_one_batch_is_stored_once(deps: Deps) -> None:
    result = ingest_uc.ingest(deps, GP, [[row(record="x"), row(record="x")]])
    assert (result.accepted, result.duplicates, result.corrected) == (1, 1, 0)
    assert result.results[0].row == 1


def _stored(deps: Deps, record: str) -> tuple[float, dt.datetime, dt.datetime]:
    with deps.uow() as uow:
        (m,) = [m for (_k, _o, r), m in fake_repository(uow).stored() if r == record]
        return m.value, from_micros(m.measured_micros), m.ingested_at


def test_a_record_sent_again_with_another_value_is_a_correction_that_keeps_the_old_value(
    deps: Deps, store: Store
) -> None:
    first = ingest_uc.ingest(deps, GP, [[row(record="c1", value=61.0)]])
    assert first.accepted == 1
    deps.clock = FixedClock(NOW + dt.timedelta(hours=2))
    again = ingest_uc.ingest(deps, GP, [[row(record="c1", value=52.0)]])
    assert (again.accepted, again.duplicates, again.corrected, again.rejected) == (0, 0, 1, 0)
    assert [(r.row, r.outcome) for r in again.results] == [(0, "corrected")]
    value, _when, received = _stored(deps, "c1")
    assert (value, received) == (52.0, NOW + dt.timedelta(hours=2))
    (revision,) = store.revisions
    assert (revision.value, revision.ingested_at, revision.superseded_at) == (
        61.0,
        NOW,
        NOW + dt.timedelta(hours=2),
    )
    assert len(store.measurements) == 1
    same = ingest_uc.ingest(deps, GP, [[row(record="c1", value=52.0)]])
    assert (same.duplicates, same.corrected) == (1, 0)


def test_a_correction_is_authorized_as_an_update_of_the_callers_own_record(
    deps: Deps, identity: FakeIdentity
) -> None:
    ingest_uc.ingest(deps, GP, [[row(record="u1", value=50.0), row("p-2", record="u2")]])
    identity.questions.clear()
    identity.batches.clear()

    def no_updates_of_p2(q: AccessQuestion) -> AccessDecision | None:
        if q.access is Access.UPDATE and q.patient_id == "p-2":
            return AccessDecision(False, "NO_CARE_RELATIONSHIP")
        return None

    identity.decide = no_updates_of_p2
    result = ingest_uc.ingest(
        deps, GP, [[row(record="u1", value=51.0), row("p-2", record="u2", value=60.0)]]
    )
    assert [(r.row, r.outcome, r.reason) for r in result.results] == [
        (0, "corrected", ""),
        (1, "rejected", "NO_CARE_RELATIONSHIP"),
    ]
    # No create is asked about, since nothing is created; the updates in one question.
    assert [(b.patient_ids, b.access, b.record_holder_id) for b in identity.batches] == [
        (["p-1", "p-2"], Access.UPDATE, "gp-de-linde")
    ]
    assert identity.questions == []
    assert _stored(deps, "u2")[0] == 52.0  # not corrected


def test_a_patient_is_asked_about_the_accesses_its_rows_make_and_no_other(
    deps: Deps, identity: FakeIdentity
) -> None:
    """Corrections only: an update; new rows only: a create; both: one of each (two
    accesses happened); duplicates only: a read (the answer says what the record holds).
    A refused create does not stop a permitted update."""
    ingest_uc.ingest(deps, GP, [[row(record="a1", value=50.0), row("p-2", record="a2")]])
    identity.batches.clear()

    def no_creates_for_p1(q: AccessQuestion) -> AccessDecision | None:
        if q.access is Access.CREATE and q.patient_id == "p-1":
            return AccessDecision(False, "NO_CARE_RELATIONSHIP")
        return None

    identity.decide = no_creates_for_p1
    result = ingest_uc.ingest(
        deps,
        GP,
        [
            [
                row(record="a1", value=51.0),  # p-1: a correction
                row(record="a3", value=53.0),  # p-1: a new row, refused
                row("p-2", record="a2"),  # p-2: a duplicate
            ]
        ],
    )
    assert [(r.row, r.outcome, r.reason) for r in result.results] == [
        (0, "corrected", ""),
        (1, "rejected", "NO_CARE_RELATIONSHIP"),
        (2, "duplicate", ""),
    ]
    # A create names no record holder (the subject's own), a read or update the caller's.
    assert [(b.patient_ids, b.access, b.record_holder_id) for b in identity.batches] == [
        (["p-1"], Access.CREATE, ""),
        (["p-1"], Access.UPDATE, "gp-de-linde"),
        (["p-2"], Access.READ, "gp-de-linde"),
    ]
    assert identity.questions == []
    identity.batches.clear()
    again = ingest_uc.ingest(deps, GP, [[row(record="a1", value=51.0), row("p-2", record="a2")]])
    assert again.duplicates == 2
    assert [(b.patient_ids, b.access) for b in identity.batches] == [(["p-1", "p-2"], Access.READ)]
    assert identity.questions == []


def test_a_patient_not_enrolled_is_asked_about_a_read_of_its_enrolments_not_a_create(
    deps: Deps, identity: FakeIdentity
) -> None:
    """Nothing is created for a patient who is not enrolled: identity is asked (once per
    call, however many chunks) whether the caller may read the patient's enrolments, and the
    rows get NOT_ENROLLED when it may, identity's reason when it may not; an enrolled
    patient of the same chunks gets its create."""
    identity.batches.clear()
    rows = [row("p-3", record=f"ne-{i}") for i in range(9)]  # chunks of 7: 0-6, 7-10
    rows += [row("p-9", record="ne-9"), row(record="ne-ok")]
    result = ingest_uc.ingest(deps, GP, [rows[:5], rows[5:]])
    assert result.accepted == 1
    assert {(r.row, r.reason) for r in result.results} == {
        *((i, "NOT_ENROLLED") for i in range(9)),
        (9, "NO_CARE_RELATIONSHIP"),
    }
    assert [(b.patient_ids, b.access, b.purpose, b.record_holder_id) for b in identity.batches] == [
        (["p-3"], Access.READ, "enrolments", "gp-de-linde"),
        (["p-1"], Access.CREATE, "measurements", ""),
        (["p-9"], Access.READ, "enrolments", "gp-de-linde"),
    ]
    assert identity.questions == []


def test_a_duplicate_is_reported_only_to_a_caller_who_may_read_the_record(
    deps: Deps, identity: FakeIdentity
) -> None:
    """A duplicate tells what the caller's organisation's record holds: refused like a
    read (a care relationship that ended), and nothing is said about the stored row."""
    ingest_uc.ingest(deps, GP, [[row(record="d1", value=50.0)]])
    identity.batches.clear()
    identity.permitted = {"p-2", "p-3"}
    result = ingest_uc.ingest(deps, GP, [[row(record="d1", value=50.0)]])
    assert [(r.row, r.outcome, r.reason) for r in result.results] == [
        (0, "rejected", "NO_CARE_RELATIONSHIP")
    ]
    assert [(b.patient_ids, b.access) for b in identity.batches] == [(["p-1"], Access.READ)]


def test_a_later_row_of_one_batch_corrects_an_earlier_one_in_row_order(
    deps: Deps, store: Store
) -> None:
    rows = [
        row(record="c2", value=50.0),
        row(record="c2", value=51.0),
        row(record="c2", value=52.0),
    ]
    result = ingest_uc.ingest(deps, GP, [rows])
    assert (result.accepted, result.corrected) == (1, 2)
    assert _stored(deps, "c2")[0] == 52.0
    values = [r.value for r in store.revisions]
    assert sorted(values) == [50.0, 51.0]


def test_a_record_id_of_another_patient_or_code_is_a_conflict_and_changes_nothing(
    deps: Deps,
) -> None:
    ingest_uc.ingest(deps, GP, [[row(record="c3", value=50.0)]])
    result = ingest_uc.ingest(
        deps,
        GP,
        [
            [
                row("p-2", record="c3", value=51.0),
                row(record="c3", code="SBP", value=130.0, unit="mm[Hg]"),
            ]
        ],
    )
    assert [(r.outcome, r.reason, r.field) for r in result.results] == [
        ("rejected", "SOURCE_RECORD_CONFLICT", "source_record_id")
    ] * 2
    assert _stored(deps, "c3")[0] == 50.0


def test_another_organisation_cannot_correct_a_record_it_does_not_hold(
    deps: Deps,
) -> None:
    ingest_uc.ingest(deps, GP, [[row(record="c4", value=50.0)]])
    other = fake_principal("u-devries", roles=["gp"], organisation="gp-het-anker")
    assert ingest_uc.ingest(deps, other, [[row(record="c4", value=50.0)]]).duplicates == 1
    result = ingest_uc.ingest(deps, other, [[row(record="c4", value=58.0)]])
    assert [(r.outcome, r.reason) for r in result.results] == [
        ("rejected", "SOURCE_RECORD_CONFLICT")
    ]
    assert _stored(deps, "c4")[0] == 50.0


def test_identity_is_asked_once_per_distinct_patient_of_a_batch(
    deps: Deps, identity: FakeIdentity
) -> None:
    rows = [row(p, record=f"{p}-{i}") for i in range(10) for p in ("p-1", "p-2")]
    ingest_uc.ingest(deps, GP, [rows])
    asked = [p for b in identity.batches for p in b.patient_ids]
    assert sorted(asked) == ["p-1", "p-2"]
    assert all(b.access is Access.CREATE for b in identity.batches)
    assert identity.questions == []


def test_an_insurer_token_cannot_ingest(deps: Deps, identity: FakeIdentity) -> None:
    with pytest.raises(errors.InsurerNoPatientData):
        ingest_uc.ingest(deps, INSURER, [[row()]])
    assert identity.asked_patients == []


def test_identity_unreachable_refuses_the_rows_instead_of_permitting(
    deps: Deps, identity: FakeIdentity, store: Store
) -> None:
    identity.unavailable = True
    with pytest.raises(errors.IdentityUnavailable):
        ingest_uc.ingest(deps, GP, [[row()]])
    assert len(store.measurements) == 0


def test_a_denied_patient_cannot_be_enrolled(deps: Deps) -> None:
    data = enrolments.EnrolmentInput(
        "p-9",
        Programme.COPD,
        "gp-de-linde",
        "01012345",
        dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
        "",
        1950,
        Sex.MALE,
    )
    with pytest.raises(AccessRefused) as caught:
        enrolments.create_enrolment(deps, GP, data)
    assert caught.value.reason == "NO_CARE_RELATIONSHIP"


def test_enrolling_twice_with_the_same_details_is_idempotent_and_with_others_conflicts(
    deps: Deps,
) -> None:
    data = enrolments.EnrolmentInput(
        "p-3",
        Programme.COPD,
        "gp-de-linde",
        "01012345",
        dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
        "",
        1950,
        Sex.MALE,
    )
    first = enrolments.create_enrolment(deps, GP, data)
    assert enrolments.create_enrolment(deps, GP, data).id == first.id
    with pytest.raises(errors.EnrolmentExists):
        enrolments.create_enrolment(
            deps, GP, enrolments.EnrolmentInput(**(data.__dict__ | {"birth_year": 1951}))
        )

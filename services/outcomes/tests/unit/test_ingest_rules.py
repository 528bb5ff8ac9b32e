"""The ingest's row rules: every reject reason with its field, the order in which a row's
problems are reported, and, over random streams, the same outcome for every row as the rules
applied row by row in stream order (``expected`` below)."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from outcomes import base
from outcomes.codes import code_table
from outcomes.deps import Deps
from outcomes.models import SourceKind
from outcomes.repository import unix_micros
from outcomes.use_cases import measurements as ingest_uc
from servicekit import names
from servicekit.identity_client import Access
from testkit.fakes import FakeIdentity

from ..fakes import FixedClock, enrolled, fake_deps, fake_repository
from .test_ingest import GP, NOW, row

PERMITTED = {"p-1", "p-2", "p-3"}
UNKNOWN = {"p-404"}
ENROLLED = {"p-1", "p-2"}


@pytest.fixture
def deps() -> Deps:
    identity = FakeIdentity(permitted=set(PERMITTED), unknown=set(UNKNOWN))
    deps, _store = fake_deps(identity, FixedClock(NOW), chunk=7)
    enrolled(deps, sorted(ENROLLED), NOW)
    return deps


def _stored(deps: Deps) -> list[tuple[Any, ...]]:
    """The stored rows in the order of their ids."""
    with deps.uow() as uow:
        return [
            (m.patient_id, m.code, m.value, m.unit, kind, org, record)
            for (kind, org, record), m in fake_repository(uow).stored()
        ]


def test_each_reason_is_reported_with_its_field(deps: Deps) -> None:
    rows = [
        row(record="bad-patient", patient="p 1"),
        row(record="bad-code", code="NOPE"),
        row(record="bad-unit", unit="%"),
        row(record="too-high", value=201.0),
        row(record="too-low", value=19.9),
        row(record="inf", value=math.inf),
        row(record="nan", value=math.nan),
        row(record="no-time", measure_time=None),
        row(record="future", measure_time=NOW + dt.timedelta(microseconds=1)),
        row(record="no-kind", source_kind=None),
        row(record="bad-org", source_org="organisations/Lab_1"),
        row(record=""),
        row(record="x" * 129),
        row("p-3", record="not-enrolled"),
        row("p-9", record="no-relationship"),
        row("p-404", record="not-found"),
        row(record="ok-now", measure_time=NOW, value=200.0),
        row(record="x" * 128, value=20.0),
    ]
    result = ingest_uc.ingest(deps, GP, [rows])
    assert (result.accepted, result.duplicates, result.rejected) == (2, 0, 16)
    assert [(r.row, r.outcome, r.reason, r.field) for r in result.results] == [
        (0, "rejected", "INVALID_PATIENT", "patient"),
        (1, "rejected", "UNKNOWN_CODE", "code"),
        (2, "rejected", "WRONG_UNIT", "unit"),
        (3, "rejected", "OUT_OF_RANGE", "value"),
        (4, "rejected", "OUT_OF_RANGE", "value"),
        (5, "rejected", "OUT_OF_RANGE", "value"),
        (6, "rejected", "OUT_OF_RANGE", "value"),
        (7, "rejected", "MEASURE_TIME_REQUIRED", "measure_time"),
        (8, "rejected", "FUTURE_TIME", "measure_time"),
        (9, "rejected", "INVALID_SOURCE", "source.kind"),
        (10, "rejected", "INVALID_SOURCE", "source.organisation"),
        (11, "rejected", "SOURCE_RECORD_ID_REQUIRED", "source_record_id"),
        (12, "rejected", "SOURCE_RECORD_ID_REQUIRED", "source_record_id"),
        (13, "rejected", "NOT_ENROLLED", "patient"),
        (14, "rejected", "NO_CARE_RELATIONSHIP", "patient"),
        (15, "rejected", "NO_CARE_RELATIONSHIP", "patient"),
    ]


def test_a_source_record_id_with_a_nul_character_is_rejected_alone(deps: Deps) -> None:
    rows = [row(record="ok-nul-1"), row(record="bad\x00id"), row(record="ok-nul-2")]
    result = ingest_uc.ingest(deps, GP, [rows])
    assert result.accepted == 2
    assert [(r.row, r.reason, r.field) for r in result.results] == [
        (1, "INVALID_SOURCE_RECORD_ID", "source_record_id")
    ]


def test_a_row_reports_its_first_problem_only(deps: Deps) -> None:
    result = ingest_uc.ingest(
        deps,
        GP,
        [
            [
                row(record="", code="NOPE", source_kind=None),
                row(record="", value=500.0, measure_time=None),
                row(record="", measure_time=None, source_org="lab"),
                row(record="", source_kind=None, source_org="lab"),
                row("p-9", record="", unit="%"),
            ]
        ],
    )
    assert [(r.reason, r.field) for r in result.results] == [
        ("UNKNOWN_CODE", "code"),
        ("OUT_OF_RANGE", "value"),
        ("MEASURE_TIME_REQUIRED", "measure_time"),
        ("INVALID_SOURCE", "source.kind"),
        ("WRONG_UNIT", "unit"),
    ]


def test_a_record_id_first_sent_for_a_denied_patient_is_stored_from_the_next_row(
    deps: Deps,
) -> None:
    rows = [
        row("p-9", record="shared", value=41.0),
        row("p-1", record="shared", value=42.0),
        row("p-2", record="shared", value=43.0),
        row("p-9", record="shared", value=44.0),
        row("p-2", record="after", value=45.0),
    ]
    result = ingest_uc.ingest(deps, GP, [rows])
    assert [(r.row, r.outcome, r.reason) for r in result.results] == [
        (0, "rejected", "NO_CARE_RELATIONSHIP"),
        (2, "rejected", "SOURCE_RECORD_CONFLICT"),  # p-1's record id, sent for p-2
        # p-1's too: a conflict creates nothing, whatever identity says of p-9
        (3, "rejected", "SOURCE_RECORD_CONFLICT"),
    ]
    assert _stored(deps) == [
        ("p-1", "HBA1C", 42.0, "mmol/mol", "LAB", "lab-eindhoven", "shared"),
        ("p-2", "HBA1C", 45.0, "mmol/mol", "LAB", "lab-eindhoven", "after"),
    ]


def test_a_patient_name_is_no_organisation_and_an_organisation_name_no_patient(
    deps: Deps,
) -> None:
    rows = [
        row(record="ok-1"),
        row(record="org-as-patient", patient="organisations/lab-eindhoven"),
        row(record="patient-as-org", source_org="patients/p-1"),
    ]
    result = ingest_uc.ingest(deps, GP, [rows])
    assert [(r.row, r.reason, r.field) for r in result.results] == [
        (1, "INVALID_PATIENT", "patient"),
        (2, "INVALID_SOURCE", "source.organisation"),
    ]


# ----------------------------------------------------------------- the rules row by row


def _problem(r: ingest_uc.MeasurementInput) -> tuple[str, str] | None:
    ident = r.patient.removeprefix("patients/")
    if not r.patient.startswith("patients/") or not base.valid_patient_id(ident):
        return ("INVALID_PATIENT", "patient")
    entry = code_table().get(r.code)
    if entry is None:
        return ("UNKNOWN_CODE", "code")
    if r.unit != entry.unit:
        return ("WRONG_UNIT", "unit")
    if not math.isfinite(r.value) or not entry.plausible(r.value):
        return ("OUT_OF_RANGE", "value")
    if r.measure_time is None:
        return ("MEASURE_TIME_REQUIRED", "measure_time")
    if r.measure_time > NOW:
        return ("FUTURE_TIME", "measure_time")
    if r.source_kind is None:
        return ("INVALID_SOURCE", "source.kind")
    org = r.source_org.removeprefix("organisations/")
    if not r.source_org.startswith("organisations/") or not names.valid_id(org):
        return ("INVALID_SOURCE", "source.organisation")
    if not r.source_record_id or len(r.source_record_id) > 128:
        return ("SOURCE_RECORD_ID_REQUIRED", "source_record_id")
    if "\x00" in r.source_record_id:
        return ("INVALID_SOURCE_RECORD_ID", "source_record_id")
    return None


def _decision(patient: str) -> tuple[bool, str]:
    if patient in UNKNOWN or patient not in PERMITTED:
        return (False, "NO_CARE_RELATIONSHIP")
    if patient not in ENROLLED:
        return (False, "NOT_ENROLLED")
    return (True, "")


@dataclass
class Expected:
    outcomes: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    stored: list[list[Any]] = field(default_factory=list)  # in row order


def expected(
    batches: Sequence[Sequence[ingest_uc.MeasurementInput]],
    chunk: int,
    existing: dict[Any, list[Any]],
) -> Expected:
    """Each chunk: a row's first problem rejects it; the others, in row order, compared
    with what is stored under their source key (before the chunk or by an earlier row of
    it): a source key not stored yet is a new row, stored unless identity refuses the
    patient a create (or the patient is not enrolled), which rejects it and leaves the key
    free; a stored key is a conflict for another patient or code (no access, so no
    decision matters), a duplicate with the same value and time (no access either), and
    otherwise a correction, made unless identity refuses the patient an update.
    ``existing`` maps the source keys stored so far to their stored rows (patient, code,
    value, unit, source key, time), updated in place by corrections; ``stored`` lists new
    rows in row order."""
    out = Expected()
    rows = [r for b in batches for r in b]
    for start in range(0, len(rows), chunk):
        for n, r in enumerate(rows[start : start + chunk], start):
            problem = _problem(r)
            if problem:
                out.outcomes[n] = ("rejected", *problem)
                continue
            patient = r.patient.removeprefix("patients/")
            assert r.source_kind is not None
            key = (r.source_kind.value, r.source_org.removeprefix("organisations/"))
            source_key = (*key, r.source_record_id)
            held = existing.get(source_key)
            if held is None:
                ok, reason = _decision(patient)
                if not ok:
                    out.outcomes[n] = ("rejected", reason, "patient")
                    continue
                existing[source_key] = [patient, r.code, float(r.value), r.unit, *source_key]
                existing[source_key].append(r.measure_time)
                out.stored.append(existing[source_key])
            elif (held[0], held[1]) != (patient, r.code):
                out.outcomes[n] = ("rejected", "SOURCE_RECORD_CONFLICT", "source_record_id")
            elif (held[2], held[-1]) == (float(r.value), r.measure_time):
                out.outcomes[n] = ("duplicate", "", "")
            else:
                ok, reason = _decision(patient)  # a stored patient is enrolled
                if not ok:
                    out.outcomes[n] = ("rejected", reason, "patient")
                    continue
                held[2], held[-1] = float(r.value), r.measure_time
                out.outcomes[n] = ("corrected", "", "")
    return out


def _random_row(rng: random.Random) -> ingest_uc.MeasurementInput:
    code, unit, low, high = rng.choice(
        [("HBA1C", "mmol/mol", 20.0, 200.0), ("SBP", "mm[Hg]", 60.0, 300.0)]
    )
    return ingest_uc.MeasurementInput(
        patient=rng.choice(
            ["patients/p-1"] * 4
            + ["patients/p-2"] * 3
            + ["patients/p-3", "patients/p-9", "patients/p-404", "p-1", "patients/a/b"]
        ),
        code=rng.choice([code] * 12 + ["NOPE"]),
        value=rng.choice(
            [rng.uniform(low, high)] * 12 + [high + 1, low - 1, math.inf, math.nan, high]
        ),
        unit=rng.choice([unit] * 12 + ["%"]),
        measure_time=rng.choice(
            [NOW - dt.timedelta(days=rng.randint(0, 900), microseconds=rng.randint(0, 10**6))] * 12
            + [None, NOW, NOW + dt.timedelta(microseconds=1)]
        ),
        source_kind=rng.choice([SourceKind.LAB] * 8 + [SourceKind.KIS] * 4 + [None]),
        source_org=rng.choice(
            ["organisations/lab-a"] * 8 + ["organisations/lab-b"] * 4 + ["lab-a"]
        ),
        source_record_id=rng.choice([f"r{rng.randint(0, 12)}"] * 12 + ["", "y" * 129]),
    )


@pytest.mark.parametrize("seed", range(12))
def test_every_row_has_the_outcome_of_the_rules_applied_row_by_row(deps: Deps, seed: int) -> None:
    identity = cast(FakeIdentity, deps.identity)
    rng = random.Random(seed)
    existing: dict[Any, list[Any]] = {}
    stored: list[list[Any]] = []
    for attempt in range(3):
        rows = [_random_row(rng) for _ in range(rng.randint(20, 120))]
        cuts = sorted(rng.sample(range(1, len(rows)), 3))
        batches = [rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]
        want = expected(batches, 7, existing)
        identity.batches.clear()
        identity.questions.clear()
        got = ingest_uc.ingest(deps, GP, batches)
        # identity was asked once per patient and access, about the accesses that happened
        # (and the ones it refused): a create for every enrolled patient with a new row, an
        # update for every patient with a correction, a read of the measurements for every
        # patient with only duplicates in a chunk, a read of the enrolments (and no create)
        # for every patient with a new row who is not enrolled, nothing for conflicts.
        asked = [(p, b.access, b.purpose) for b in identity.batches for p in b.patient_ids]
        asked += [(q.patient_id, q.access, q.purpose) for q in identity.questions]
        assert len(asked) == len(set(asked))
        patient = {n: r.patient.removeprefix("patients/") for n, r in enumerate(rows)}
        created = {patient[n] for n in range(len(rows)) if n not in want.outcomes}
        corrected = {patient[n] for n, o in want.outcomes.items() if o[0] == "corrected"}
        refused_rows = {
            n for n, o in want.outcomes.items() if o[1] in ("NO_CARE_RELATIONSHIP", "NOT_ENROLLED")
        }
        refused = {patient[n] for n in refused_rows}
        assert refused.isdisjoint(ENROLLED)
        assert {p for p, a, _ in asked if a is Access.CREATE} == created
        assert {p for p, a, _ in asked if a is Access.UPDATE} == corrected
        assert {p for p, a, why in asked if a is Access.READ and why == "enrolments"} == refused
        compared: set[str] = set()
        for start in range(0, len(rows), 7):
            numbers = range(start, min(start + 7, len(rows)))
            outcome = {n: want.outcomes.get(n, ("accepted", "", ""))[0] for n in numbers}
            writing = {patient[n] for n in numbers if outcome[n] in ("accepted", "corrected")}
            writing |= {patient[n] for n in numbers if n in want.outcomes and n in refused_rows}
            compared |= {patient[n] for n in numbers if outcome[n] == "duplicate"} - writing
        assert {p for p, a, why in asked if a is Access.READ and why == "measurements"} == compared
        assert {r.row: (r.outcome, r.reason, r.field) for r in got.results} == want.outcomes, (
            attempt
        )
        assert got.accepted == len(rows) - len(want.outcomes) == len(want.stored)
        assert got.rejected == sum(o[0] == "rejected" for o in want.outcomes.values())
        assert got.duplicates == sum(o[0] == "duplicate" for o in want.outcomes.values())
        assert got.corrected == sum(o[0] == "corrected" for o in want.outcomes.values())
        stored += want.stored
        assert _stored(deps) == [tuple(s[:-1]) for s in stored]


# ----------------------------------------------------------------- protobuf rows


def _proto_row(**fields: Any) -> Any:
    from carenet.outcomes.v1 import outcomes_pb2 as pb
    from carenet.outcomes.v1 import outcomes_service_pb2 as rpc

    values: dict[str, Any] = {
        "patient": "patients/p-1",
        "code": "HBA1C",
        "value": 52.0,
        "unit": "mmol/mol",
        "source": pb.MeasurementSource(
            kind=pb.SOURCE_KIND_LAB, organisation="organisations/lab-eindhoven"
        ),
        "source_record_id": "r1",
    }
    return rpc.MeasurementRow(**(values | fields))


def test_protobuf_rows_become_row_values_with_the_time_in_microseconds() -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    from carenet.outcomes.v1 import outcomes_pb2 as pb
    from outcomes.convert import row_values as _row_values

    rng = random.Random(7)
    moments = [(0, 0), (-1, 500_000), (1_748_736_000, 1_999), (253_402_300_799, 999_999_999)]
    moments += [(rng.randint(-62_135_596_800, 253_402_300_799), rng.randint(0, 10**9 - 1))]
    for seconds, nanos in moments:
        (values,) = _row_values([_proto_row(measure_time=Timestamp(seconds=seconds, nanos=nanos))])
        moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            seconds=seconds, microseconds=nanos // 1000
        )
        assert values[4] == unix_micros(moment)
    assert _row_values([_proto_row()]) == [
        (
            "patients/p-1",
            "HBA1C",
            52.0,
            "mmol/mol",
            None,
            "LAB",
            "organisations/lab-eindhoven",
            "r1",
        )
    ]
    (unspecified,) = _row_values(
        [_proto_row(source=pb.MeasurementSource(organisation="organisations/lab-eindhoven"))]
    )
    assert unspecified[5] is None
    bad = [(-62_135_596_801, 0), (253_402_300_800, 0), (0, -1), (0, 1_000_000_000), (5, -1)]
    for seconds, nanos in bad:
        (values,) = _row_values([_proto_row(measure_time=Timestamp(seconds=seconds, nanos=nanos))])
        assert values[4] == ingest_uc.INVALID_TIME


def test_a_row_whose_measure_time_is_no_valid_timestamp_is_rejected_alone(
    deps: Deps,
) -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    from outcomes.convert import row_values

    good = Timestamp(seconds=int(NOW.timestamp()) - 86_400)
    rows = [
        _proto_row(source_record_id="t0", measure_time=good),
        _proto_row(source_record_id="t1", measure_time=Timestamp(seconds=253_402_300_800)),
        _proto_row(source_record_id="t2", measure_time=Timestamp(seconds=0, nanos=-1)),
        _proto_row(source_record_id="t3", measure_time=Timestamp(seconds=1, nanos=10**9)),
        _proto_row(source_record_id="t4", measure_time=good),
    ]
    job = ingest_uc.Ingest(deps, GP)
    job.feed_values(row_values(rows))
    result = job.finish()
    assert result.accepted == 2
    assert [(r.row, r.reason, r.field) for r in result.results] == [
        (n, "INVALID_MEASURE_TIME", "measure_time") for n in (1, 2, 3)
    ]

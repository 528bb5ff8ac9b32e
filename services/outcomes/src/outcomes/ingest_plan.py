"""What the rows of one ingest chunk do to the record holder's stored measurements, told
apart before anything is written: pure functions over the stored rows and identity's
decisions so far (use_cases.measurements asks identity and writes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter

from outcomes.repository import MeasurementKey, MeasurementRow, SourceKey, StoredMeasurement

Problem = tuple[str, str]  # (reason, field)
SOURCE_RECORD_CONFLICT = "SOURCE_RECORD_CONFLICT"
Decisions = dict[str, tuple[bool, str]]  # patient -> (permitted, reason)
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def resend(
    stored: StoredMeasurement,
    care_group: str,
    holder: str,
    key: MeasurementKey,
    value: float,
    micros: int,
) -> str:
    """A row whose source key the holder has stored: duplicate (the same again), corrected
    (another value or time of the same measurement, from its record holder) or conflict
    (another measurement's record id)."""
    if (
        stored.care_group_id != care_group
        or stored.patient_id != key.patient_id
        or stored.code != key.code
    ):
        return "conflict"
    if stored.value == value and stored.measured_micros == micros:
        return "duplicate"
    return "corrected" if stored.holder_id == holder else "conflict"


@dataclass(frozen=True, slots=True)
class Accesses:
    """identity's decisions so far in a call, per patient, by kind of access."""

    create: Decisions
    update: Decisions
    read: Decisions


@dataclass(frozen=True, slots=True)
class Plan:
    """The rows to reject (by row number) with their problem, and the patients (in row
    order) with new rows, with corrections, and with only duplicates in the chunk."""

    refused: dict[int, Problem]
    creates: list[str]
    updates: list[str]
    reads: list[str]


def _refused(decision: tuple[bool, str] | None) -> Problem | None:
    return None if decision is None or decision[0] else (decision[1], "patient")


def plan(
    rows: list[MeasurementRow],
    numbers: list[int],
    repeats: list[tuple[int, MeasurementRow]],
    stored: dict[SourceKey, StoredMeasurement],
    care_group: str,
    holder: str,
    accesses: Accesses,
) -> Plan:
    """Each row in row order against what ``holder`` stores under its source key and what
    the rows before it store: a new row needs a create, a correction an update; a
    duplicate needs its patient's create or update in the chunk, or else a read; a conflict
    is rejected and needs nothing. A row whose access is refused is rejected and stores
    nothing; an access not decided yet counts as permitted."""
    if not stored and not repeats:
        return _all_new(rows, numbers, accesses)
    ordered: Iterable[tuple[int, MeasurementRow]] = zip(numbers, rows, strict=True)
    if repeats:
        ordered = sorted([*ordered, *repeats], key=itemgetter(0))
    refused: dict[int, Problem] = {}
    creating: dict[str, None] = {}
    updating: dict[str, None] = {}
    duplicates: list[tuple[int, str]] = []
    current: dict[SourceKey, StoredMeasurement] = {}  # what earlier rows of the chunk store
    for number, row in ordered:
        key, value, micros, record = row
        source = (key.source_kind, key.source_org, record)
        found = current.get(source) or stored.get(source)
        if found is None:
            creating[key.patient_id] = None
            problem = _refused(accesses.create.get(key.patient_id))
        else:
            verdict = resend(found, care_group, holder, key, value, micros)
            if verdict == "duplicate":
                duplicates.append((number, key.patient_id))
                continue
            if verdict == "conflict":
                refused[number] = (SOURCE_RECORD_CONFLICT, "source_record_id")
                continue
            updating[key.patient_id] = None
            problem = _refused(accesses.update.get(key.patient_id))
        if problem is not None:
            refused[number] = problem
        elif repeats:
            current[source] = StoredMeasurement(
                0, care_group, key.patient_id, key.code, value, key.unit, micros,
                key.source_kind, holder, _UNIX_EPOCH,
            )  # fmt: skip
    reads = _duplicates(duplicates, creating, updating, accesses, refused)
    return Plan(refused, list(creating), list(updating), reads)


def _all_new(rows: list[MeasurementRow], numbers: list[int], accesses: Accesses) -> Plan:
    """Every record id is new to the record holder and to the chunk: all creates."""
    creates = list(dict.fromkeys(k.patient_id for k in dict.fromkeys(r[0] for r in rows)))
    denied = {p: d for p in creates if (d := _refused(accesses.create.get(p)))}
    refused: dict[int, Problem] = {}
    if denied:
        for number, row in zip(numbers, rows, strict=True):
            if (problem := denied.get(row[0].patient_id)) is not None:
                refused[number] = problem
    return Plan(refused, creates, [], [])


def _duplicates(
    duplicates: list[tuple[int, str]],
    creating: dict[str, None],
    updating: dict[str, None],
    accesses: Accesses,
    refused: dict[int, Problem],
) -> list[str]:
    """Adds the duplicates whose patient's access is refused to ``refused``; returns the
    patients with only duplicates, who need a read."""
    reading: dict[str, None] = {}
    for number, patient in duplicates:
        if patient in creating:
            decision = accesses.create.get(patient)
        elif patient in updating:
            decision = accesses.update.get(patient)
        else:
            reading[patient] = None
            decision = accesses.read.get(patient)
        if (problem := _refused(decision)) is not None:
            refused[number] = problem
    return list(reading)

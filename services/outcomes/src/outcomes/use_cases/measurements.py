"""Measurements: reading a patient's measurements with their corrections, from the record
holders whose records the caller may read (outcomes.access), and IngestMeasurements.

The ingest: rows checked one by one; in chunks, each row told apart against what the
record holder stores into a new measurement, a duplicate (the same value again), a
correction (another value or time for the same measurement: stored, the replaced value kept
as a revision) or a conflict (the source record id of another patient, code or care group:
rejected); identity asked, before anything is written, about the accesses that happen (a
create per enrolled patient with new rows, a read of its enrolments per patient with new
rows who is not enrolled, an update per patient with corrections, a read per patient with
only duplicates, nothing for conflicts); new rows copied into ``measurements``."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from outcomes import errors, positions
from outcomes.access import permitted_holders
from outcomes.base import (
    care_group_of,
    organisation_of,
    refuse_insurer,
    refuse_patient,
    valid_patient_id,
)
from outcomes.codes import code_table
from outcomes.deps import Deps
from outcomes.ingest_plan import SOURCE_RECORD_CONFLICT, Accesses, Problem, plan, resend
from outcomes.models import Measurement, MeasurementRevision, SourceKind
from outcomes.repository import (
    Correction,
    MeasurementKey,
    MeasurementRow,
    SourceKey,
    StoredMeasurement,
    unix_micros,
)
from outcomes.unit_of_work import UnitOfWork
from servicekit import metrics, names
from servicekit.auth import Principal
from servicekit.identity_client import Access, AccessQuestion, BatchAccessQuestion
from servicekit.paging import Page, PageRequest


@dataclass(frozen=True)
class MeasurementView:
    """A measurement with the values corrections replaced, oldest first."""

    measurement: Measurement
    revisions: Sequence[MeasurementRevision]


def list_measurements(
    deps: Deps, principal: Principal, patient_id: str, page: PageRequest
) -> Page[MeasurementView]:
    """The patient's measurements held by organisations whose records the caller may
    read (see outcomes.access), with their corrections."""
    refuse_insurer(principal)
    refuse_patient(principal)
    after = positions.after_row(page.position)
    care_group = care_group_of(principal)
    with deps.uow() as uow:
        holders = uow.repo.measurement_holders(care_group, patient_id)
    permitted = permitted_holders(deps, principal, patient_id, holders, "measurements")
    with deps.uow() as uow:
        found = Page.of(
            uow.repo.measurements(care_group, patient_id, permitted, after, page.limit),
            page,
            lambda m: {"id": m.id},
        )
        items = found.items
        revisions = uow.repo.revisions([m.id for m in items])
    views = [MeasurementView(m, revisions.get(m.id, [])) for m in items]
    return Page(views, found.next)


# ------------------------------------------------------------------ ingest

# (patient as sent, code, value, unit, measure time in microseconds since 1970-01-01 UTC or
#  None when absent (INVALID_TIME when outside the range of a Timestamp), source kind value
#  or None when not a known kind, source organisation as sent, source record id): one row as
#  the ingest checks it
RowValues = tuple[str, str, float, str, int | None, str | None, str, str]

# The first moment of a protobuf Timestamp (and of datetime): 0001-01-01; a time after now
# is refused before the last (9999-12-31) matters.
MIN_MICROS = unix_micros(dt.datetime.min.replace(tzinfo=dt.UTC))
# A measure time that was sent but is no valid Timestamp (seconds beyond year 9999 or before
# year 1, nanos outside 0..999,999,999); below every valid time.
INVALID_TIME = MIN_MICROS - 1


@dataclass(frozen=True, slots=True)
class MeasurementInput:
    patient: str  # `patients/{patient}` as sent
    code: str
    value: float
    unit: str
    measure_time: dt.datetime | None
    source_kind: SourceKind | None
    source_org: str  # `organisations/{org}` as sent
    source_record_id: str

    def values(self) -> RowValues:
        return (
            self.patient,
            self.code,
            self.value,
            self.unit,
            None if self.measure_time is None else unix_micros(self.measure_time),
            None if self.source_kind is None else self.source_kind.value,
            self.source_org,
            self.source_record_id,
        )


@dataclass(frozen=True)
class RowResult:
    row: int
    outcome: str  # accepted | duplicate | corrected | rejected
    reason: str = ""
    field: str = ""


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    corrected: int = 0
    results: list[RowResult] = field(default_factory=list)  # not-accepted rows only


def _valid_name(value: str, collection: str, cache: dict[str, bool]) -> bool:
    known = cache.get(value)
    if known is None:
        ident = value.removeprefix(f"{collection}/")
        known = value.startswith(f"{collection}/") and (
            valid_patient_id(ident) if collection == "patients" else names.valid_id(ident)
        )
        cache[value] = known
    return known


_OUT_OF_RANGE: Problem = ("OUT_OF_RANGE", "value")
_MEASURE_TIME_REQUIRED: Problem = ("MEASURE_TIME_REQUIRED", "measure_time")
_INVALID_MEASURE_TIME: Problem = ("INVALID_MEASURE_TIME", "measure_time")
_FUTURE_TIME: Problem = ("FUTURE_TIME", "measure_time")
_SOURCE_RECORD_ID_REQUIRED: Problem = ("SOURCE_RECORD_ID_REQUIRED", "source_record_id")
# A NUL character, which PostgreSQL text cannot hold (the other strings of a row are checked
# against a pattern or the code table, which no NUL passes).
_INVALID_SOURCE_RECORD_ID: Problem = ("INVALID_SOURCE_RECORD_ID", "source_record_id")
MAX_SOURCE_RECORD_ID = 128


@dataclass(eq=False, slots=True)
class _KeyCheck:
    """The checks of a row that depend only on (patient, code, unit, source kind, source
    organisation), made once per combination in a call.

    A row's first problem is, in this order: ``before`` (patient, code, unit), its value
    outside ``[low, high]``, its measure time missing, in the future or no valid time,
    ``after`` (source kind, source organisation), its source record id empty or too long."""

    before: Problem | None
    low: float
    high: float
    after: Problem | None
    key: MeasurementKey
    seen: set[str]  # source record ids of this source handled in this call


# The ``seen`` of a combination with a problem of its own: its rows are rejected before their
# record id is looked up, so this set stays empty.
_NEVER_LOOKED_UP: set[str] = set()


class Ingest:
    """One IngestMeasurements call: rows arrive in any number of messages and are handled
    in chunks of ``deps.ingest_chunk_rows``, each in its own transaction. A chunk that was
    committed stays; a retried batch finds its rows as duplicates, so a call killed halfway
    and sent again loses and duplicates nothing.

    The rows are stored with the caller's organisation as their record holder. Ingests of
    one record holder take turns chunk by chunk (a transaction-scoped lock from the look-up
    of its stored rows to the commit): what a chunk was found to create, correct or
    duplicate is what it does, so identity's log describes it."""

    def __init__(self, deps: Deps, principal: Principal) -> None:
        refuse_insurer(principal)
        refuse_patient(principal)
        self.deps = deps
        self.principal = principal
        self.care_group = care_group_of(principal)
        self.holder = organisation_of(principal)
        self.result = IngestResult()
        self.decisions: dict[str, tuple[bool, str]] = {}  # patient -> (ok, reason) to create
        self.updates: dict[str, tuple[bool, str]] = {}  # patient -> (ok, reason) to correct
        self.reads: dict[str, tuple[bool, str]] = {}  # patient -> (ok, reason) to compare
        # patient -> (ok, reason) to be told it is not enrolled (see _ask_create)
        self.enrolment_reads: dict[str, tuple[bool, str]] = {}
        self.seen: dict[tuple[str, str], set[str]] = {}  # (kind, org) -> source record ids
        self.checks: dict[tuple[str, str, str, str | None, str], _KeyCheck] = {}
        self.buffer: list[RowValues] = []
        self.flushed = 0  # rows handed to flush so far: the number of the buffer's first row
        self.valid_patients: dict[str, bool] = {}
        self.valid_organisations: dict[str, bool] = {}

    def feed(self, rows: Iterable[MeasurementInput]) -> None:
        self.feed_values([row.values() for row in rows])

    def feed_values(self, rows: Sequence[RowValues]) -> None:
        size = self.deps.ingest_chunk_rows
        start = 0
        while start < len(rows):
            take = size - len(self.buffer)
            self.buffer.extend(rows[start : start + take])
            start += take
            if len(self.buffer) >= size:
                self.flush()

    def _reject(self, row: int, reason: str, field_name: str) -> None:
        self.result.rejected += 1
        self.result.results.append(RowResult(row, "rejected", reason, field_name))

    def _duplicate(self, row: int) -> None:
        self.result.duplicates += 1
        self.result.results.append(RowResult(row, "duplicate"))

    def _corrected(self, row: int) -> None:
        self.result.corrected += 1
        self.result.results.append(RowResult(row, "corrected"))

    def _check(self, patient: str, code: str, unit: str, kind: str | None, org: str) -> _KeyCheck:
        before: Problem | None = None
        low = high = 0.0
        if not _valid_name(patient, "patients", self.valid_patients):
            before = ("INVALID_PATIENT", "patient")
        elif (entry := code_table().get(code)) is None:
            before = ("UNKNOWN_CODE", "code")
        elif unit != entry.unit:
            before = ("WRONG_UNIT", "unit")
        else:
            # Clamped to the finite floats, so that the range check also refuses inf and nan.
            low = max(entry.min_value, -sys.float_info.max)
            high = min(entry.max_value, sys.float_info.max)
        after: Problem | None = None
        if kind is None:
            after = ("INVALID_SOURCE", "source.kind")
        elif not _valid_name(org, "organisations", self.valid_organisations):
            after = ("INVALID_SOURCE", "source.organisation")
        key = MeasurementKey(
            patient.removeprefix("patients/"),
            code,
            unit,
            kind or "",
            org.removeprefix("organisations/"),
        )
        if before is None and after is None:
            seen = self.seen.setdefault((key.source_kind, key.source_org), set())
        else:
            seen = _NEVER_LOOKED_UP
        return _KeyCheck(before, low, high, after, key, seen)

    def flush(self) -> None:
        if not self.buffer:
            return
        chunk, self.buffer = self.buffer, []
        before = self._counts()
        first = self.flushed
        self.flushed += len(chunk)
        rows, numbers, repeats = self._check_rows(chunk, first)
        if not rows and not repeats:
            self._count_committed(before)
            return
        sources = [(r[0].source_kind, r[0].source_org, r[3]) for r in rows]
        sources += [(r[0].source_kind, r[0].source_org, r[3]) for _n, r in repeats]
        with self.deps.uow() as uow:
            # From here to the commit the record holder's other ingests wait: what it holds
            # under these source keys cannot change between the look-up and the write, so
            # the accesses asked about are the ones that happen. Nothing is asked or written
            # before the turn is taken, so a chunk that times out waiting leaves no trace.
            if not uow.repo.lock_holder_measurements(
                self.care_group, self.holder, self.deps.ingest_lock_timeout_seconds
            ):
                raise errors.IngestBusy(
                    "another ingest of this organisation's measurements holds its turn; "
                    "send the batch again later"
                )
            stored = uow.repo.stored_sources(self.holder, sources)
            refused = self._decide(uow, rows, numbers, repeats, stored)
            again: list[tuple[int, MeasurementRow]] = []
            if refused or repeats:
                rows, numbers, again = self._settle(rows, numbers, repeats, refused)
            now = self.deps.clock()
            self._store(uow, rows, numbers, now)
            while again:
                # A record id sent again in the same call: each round takes one row per
                # record id, in row order, and compares it with what is stored by then.
                batch: list[tuple[int, MeasurementRow]] = []
                later: list[tuple[int, MeasurementRow]] = []
                taken: set[tuple[str, str, str]] = set()
                for number, row in again:
                    source = (row[0].source_kind, row[0].source_org, row[3])
                    (later if source in taken else batch).append((number, row))
                    taken.add(source)
                self._store(uow, [r for _n, r in batch], [n for n, _r in batch], now)
                again = later
            uow.commit()
        self._count_committed(before)

    def _decide(
        self,
        uow: UnitOfWork,
        rows: list[MeasurementRow],
        numbers: list[int],
        repeats: list[tuple[int, MeasurementRow]],
        stored: dict[SourceKey, StoredMeasurement],
    ) -> dict[int, Problem]:
        """Asks identity about the accesses the chunk's rows make, before anything is
        written, and returns the rows to reject (by row number) with their problem.

        Each row is told apart in row order against what the record holder stores under
        its source key (``stored``) and what the rows before it in the chunk store: a new
        measurement (a create in the patient's record), a correction (an update), a
        duplicate or a conflict (rejected; no access). identity is asked once per patient
        and kind of access in a call: CREATE for the enrolled patients with new rows (READ
        of the enrolments for the others, see ``_ask_create``), UPDATE for the
        patients with corrections (a patient with both gets both, each the entry of an
        access that happens), and READ for a patient whose rows in the chunk are only
        duplicates (the answer tells the caller what its organisation's record of the
        patient holds: a read of it, and the only access). A patient's duplicates share its
        create's or update's decision. Creates are asked first: a refused row frees its
        record id for the rows after it, which may then be new rows of other patients."""
        accesses = Accesses(self.decisions, self.updates, self.reads)
        chunk = plan(rows, numbers, repeats, stored, self.care_group, self.holder, accesses)
        while True:
            pending = [
                (access, unknown)
                for access, wanted, decided in (
                    (Access.CREATE, chunk.creates, self.decisions),
                    (Access.UPDATE, chunk.updates, self.updates),
                    (Access.READ, chunk.reads, self.reads),
                )
                if (unknown := [p for p in wanted if p not in decided])
            ]
            if not pending:
                return chunk.refused
            access, unknown = pending[0]
            if self._ask(uow, unknown, access):
                # Undecided accesses were planned as permitted: only a refusal changes it.
                chunk = plan(rows, numbers, repeats, stored, self.care_group, self.holder, accesses)

    def _ask(self, uow: UnitOfWork, patients: list[str], access: Access) -> bool:
        """Asks identity about ``access`` to the caller's own organisation's record of each
        patient in one batch question (one decision and access-log entry each; servicekit
        sends at most 1000 patients per request): a read or an update names that
        organisation as the record holder, which identity requires for them, a create names
        none (the subject's own organisation), as a single question would. A create is
        asked about only for enrolled patients (``_ask_create``). True when any is
        refused."""
        if access is Access.CREATE:
            return self._ask_create(uow, patients)
        decisions = self.updates if access is Access.UPDATE else self.reads
        self._batch(patients, access, "measurements", decisions)
        return not all(decisions[p][0] for p in patients)

    def _ask_create(self, uow: UnitOfWork, patients: list[str]) -> bool:
        """A create needs the patient enrolled in the care group, which is looked up first,
        so that identity logs a create only for rows that are written. For a patient who is
        not enrolled nothing is created: identity is asked instead whether the caller may
        read its organisation's enrolment record of the patient (READ, purpose
        ``enrolments``, the question ListEnrolments asks for a patient without
        enrolments), because the answer NOT_ENROLLED tells the caller what is held about
        the patient. Permitted, the rows are rejected NOT_ENROLLED; refused, with
        identity's reason, which is the one a create would have got (identity decides a
        read and a create of one's own organisation's record alike), so a caller identity
        refuses cannot tell an enrolled patient from one who is not, or from one who does
        not exist."""
        enrolled = uow.repo.enrolled(self.care_group, patients)
        creates = [p for p in patients if p in enrolled]
        if creates:
            self._batch(creates, Access.CREATE, "measurements", self.decisions)
        absent = [p for p in patients if p not in enrolled]
        unknown = [p for p in absent if p not in self.enrolment_reads]
        if unknown:
            self._batch(unknown, Access.READ, "enrolments", self.enrolment_reads)
        for p in absent:
            may_read, reason = self.enrolment_reads[p]
            self.decisions[p] = (False, "NOT_ENROLLED" if may_read else reason)
        return not all(self.decisions[p][0] for p in patients)

    def _batch(
        self,
        patients: list[str],
        access: Access,
        purpose: str,
        decisions: dict[str, tuple[bool, str]],
    ) -> None:
        """identity's decisions about ``access`` for ``patients`` into ``decisions``."""
        holder = "" if access is Access.CREATE else self.holder
        decided = self.deps.identity.authorize_many(
            BatchAccessQuestion(self.principal, patients, access, purpose, holder)
        )
        for p, d in decided.items():
            decisions[p] = (d.permitted, d.reason)
        for p in patients:
            decisions.setdefault(p, (False, "NO_DECISION"))

    def _counts(self) -> tuple[int, int, int, int]:
        r = self.result
        return (r.accepted, r.duplicates, r.corrected, r.rejected)

    def _count_committed(self, before: tuple[int, int, int, int]) -> None:
        """Adds the rows of a committed chunk to ``carenet.outcomes.measurements`` by result
        (servicekit.metrics): a chunk whose transaction failed counts nothing."""
        counters = metrics.domain()
        for result, now, then in zip(
            ("accepted", "duplicate", "corrected", "rejected"), self._counts(), before, strict=True
        ):
            counters.measurements(result, now - then)

    def _store(
        self, uow: UnitOfWork, rows: list[MeasurementRow], numbers: list[int], now: dt.datetime
    ) -> None:
        """Copies the rows; each row whose source key was taken is a duplicate, a correction
        or a conflict."""
        taken = uow.repo.insert_measurement_rows(self.care_group, self.holder, now, rows)
        self.result.accepted += len(rows) - len(taken)
        corrections: list[tuple[int, Correction]] = []
        for n, stored in sorted(taken.items()):
            key, value, micros, _record = rows[n]
            verdict = resend(stored, self.care_group, self.holder, key, value, micros)
            if verdict == "duplicate":
                self._duplicate(numbers[n])
            elif verdict == "corrected":
                corrections.append((numbers[n], Correction(stored, value, micros)))
            else:
                self._reject(numbers[n], SOURCE_RECORD_CONFLICT, "source_record_id")
        allowed = []
        for number, correction in corrections:
            ok, reason = self._may(correction.stored.patient_id, Access.UPDATE)
            if ok:
                allowed.append((number, correction))
            else:
                self._reject(number, reason, "patient")
        if allowed:
            uow.repo.correct_measurements([c for _n, c in allowed], now)
            for number, _c in allowed:
                self._corrected(number)

    def _may(self, patient: str, access: Access) -> tuple[bool, str]:
        """identity's decision (asked once per patient in a call) whether the caller may read
        or update its own organisation's record of the patient. It is asked before the
        chunk is written (``_decide``); a correction found only when storing (a row stored
        by something other than an ingest, which takes no turn) is asked about then, before
        it is made."""
        decisions = self.updates if access is Access.UPDATE else self.reads
        decision = decisions.get(patient)
        if decision is None:
            answer = self.deps.identity.authorize(
                AccessQuestion(self.principal, patient, access, self.holder, "measurements")
            )
            decision = decisions[patient] = (answer.permitted, answer.reason)
        return decision

    def _check_rows(
        self, chunk: list[RowValues], first: int
    ) -> tuple[list[MeasurementRow], list[int], list[tuple[int, MeasurementRow]]]:
        """Rejects the malformed rows of a chunk; returns the well-formed rows whose record id
        is new in the call, their row numbers, and the well-formed rows whose record id was
        seen before in the call (with their row numbers)."""
        now = unix_micros(self.deps.clock())
        checks = self.checks
        rows: list[MeasurementRow] = []
        numbers: list[int] = []
        repeats: list[tuple[int, MeasurementRow]] = []
        for number, (patient, code, value, unit, micros, kind, org, record) in enumerate(
            chunk, first
        ):
            check = checks.get((patient, code, unit, kind, org))
            if check is None:
                check = checks[(patient, code, unit, kind, org)] = self._check(
                    patient, code, unit, kind, org
                )
            problem = check.before
            if problem is None:
                if not check.low <= value <= check.high:
                    problem = _OUT_OF_RANGE
                elif micros is None:
                    problem = _MEASURE_TIME_REQUIRED
                elif micros > now:
                    problem = _FUTURE_TIME
                elif micros < MIN_MICROS:
                    problem = _INVALID_MEASURE_TIME
                elif check.after is not None:
                    problem = check.after
                elif not record or len(record) > MAX_SOURCE_RECORD_ID:
                    problem = _SOURCE_RECORD_ID_REQUIRED
                elif "\x00" in record:
                    problem = _INVALID_SOURCE_RECORD_ID
                elif record in check.seen:
                    repeats.append((number, (check.key, value, micros, record)))
                    continue
                else:
                    check.seen.add(record)
                    rows.append((check.key, value, micros, record))
                    numbers.append(number)
                    continue
            self._reject(number, *problem)
        return rows, numbers, repeats

    def _settle(
        self,
        rows: list[MeasurementRow],
        numbers: list[int],
        repeats: list[tuple[int, MeasurementRow]],
        refused: dict[int, Problem],
    ) -> tuple[list[MeasurementRow], list[int], list[tuple[int, MeasurementRow]]]:
        """The rows to store, in row order, once identity has decided: refused rows are
        rejected with their problem and free their record id; then a repeated record id is
        stored when no earlier kept row has it, and is otherwise compared with the stored
        row afterwards (the third list)."""
        kept: list[tuple[int, MeasurementRow]] = []
        for number, row in zip(numbers, rows, strict=True):
            problem = refused.get(number)
            if problem is None:
                kept.append((number, row))
            else:
                self._reject(number, *problem)
                self.seen[(row[0].source_kind, row[0].source_org)].discard(row[3])
        added = False
        again: list[tuple[int, MeasurementRow]] = []
        for number, row in repeats:
            key = row[0]
            problem = refused.get(number)
            seen = self.seen[(key.source_kind, key.source_org)]
            if problem is not None:
                self._reject(number, *problem)
            elif row[3] in seen:
                again.append((number, row))
            else:
                seen.add(row[3])
                kept.append((number, row))
                added = True
        if added:
            kept.sort(key=itemgetter(0))
        return [row for _n, row in kept], [n for n, _row in kept], again

    def finish(self) -> IngestResult:
        self.flush()
        self.result.results.sort(key=lambda r: r.row)
        return self.result


def ingest(
    deps: Deps, principal: Principal, batches: Iterable[Sequence[MeasurementInput]]
) -> IngestResult:
    job = Ingest(deps, principal)
    for batch in batches:
        job.feed(batch)
    return job.finish()

"""The outcomes use cases, as plain functions over a unit of work.

Every function takes the verified :class:`~servicekit.auth.Principal`. Enrolments and
measurements are patient data: every read or write is authorized by identity (category
MEASUREMENTS) first, and insurer tokens are refused before identity is even asked.
Contracts, reports and financing are aggregates: they are scoped by tenant and role here.
"""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any

from outcomes import errors, financing, indicators, reporting, sroi
from outcomes.clients import IdentityClient
from outcomes.codes import code_table
from outcomes.models import (
    DEFAULT_SOURCE_PRIORITY,
    Contract,
    CostRecord,
    Enrolment,
    FinancingModel,
    IndicatorDefinitionRecord,
    Measurement,
    Programme,
    Report,
    Sex,
    SourceKind,
    Stratifier,
    canonical_json,
    sha256_hex,
)
from outcomes.repository import MeasurementKey, MeasurementRow, unix_micros
from outcomes.suppression import Key, is_small, protect
from outcomes.unit_of_work import UnitOfWork
from servicekit import dutch, names
from servicekit.auth import Principal
from servicekit.errors import InvalidArgument, Violations

ADMIN = "care-group-admin"
INSURER = "insurer-analyst"
PRACTICE_ROLES = frozenset({"gp", "practice-nurse"})
REPORT_READERS = frozenset({ADMIN, INSURER, "auditor", "gp", "practice-nurse", "service"})
PRINCIPLES = (
    "scope",
    "financing_base",
    "financing_goal",
    "contract_form",
    "duration",
    "risk_allocation",
    "chain_partners",
    "reward_of_professionals",
    "condition_scope",
)
MAX_ENROLMENT_BATCH = 1000


@dataclass
class Deps:
    uow: Callable[[], UnitOfWork]
    identity: IdentityClient
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    ingest_chunk_rows: int = 5000


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    next_position: dict[str, Any] | None


def _id(name: str) -> str:
    return name.removeprefix("organisations/")


def _care_group(principal: Principal) -> str:
    return _id(principal.care_group)


def _org(principal: Principal) -> str:
    return _id(principal.organisation)


def _refuse_insurer(principal: Principal) -> None:
    if principal.has_role(INSURER):
        raise errors.InsurerNoPatientData("insurers receive aggregates only")


# ------------------------------------------------------------------ indicator definitions


def load_definitions(deps: Deps, definitions: Sequence[indicators.Definition] | None = None) -> int:
    """Stores every shipped definition version not stored yet. A stored (code, version) is
    immutable: a file that changed it stops the service (add a new version instead)."""
    added = 0
    with deps.uow() as uow:
        for d in definitions if definitions is not None else indicators.load_files():
            record = uow.repo.definition(d.code, d.version)
            if record is None:
                uow.repo.add(
                    IndicatorDefinitionRecord(
                        code=d.code,
                        version=d.version,
                        title=d.title,
                        condition=d.condition,
                        definition_json=d.canonical,
                        content_hash=d.content_hash,
                        create_time=deps.clock(),
                    )
                )
                added += 1
            elif record.content_hash != d.content_hash:
                raise errors.IndicatorVersionChanged(
                    f"{d.name} differs from the stored version; add a new version instead",
                    metadata={"indicator": d.name},
                )
        uow.commit()
    return added


def get_definition(
    deps: Deps, principal: Principal, code: str, version: int
) -> IndicatorDefinitionRecord:
    with deps.uow() as uow:
        record = uow.repo.definition(code, version)
        if record is None:
            raise errors.IndicatorNotFound("indicator definition not found")
        return record


def list_definitions(
    deps: Deps, principal: Principal, position: dict[str, Any] | None, limit: int
) -> Page:
    after = (str(position["c"]), int(position["v"])) if position else None
    with deps.uow() as uow:
        items = uow.repo.definitions(after, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return Page(items, {"c": items[-1].code, "v": items[-1].version} if more else None)


# ------------------------------------------------------------------ enrolments


@dataclass(frozen=True)
class EnrolmentInput:
    patient_id: str
    programme: Programme | None
    practice_id: str
    practice_agb: str
    start_time: dt.datetime | None
    main_practitioner: str
    birth_year: int
    sex: Sex | None


def _validate_enrolment(
    data: EnrolmentInput, now: dt.datetime, v: Violations, prefix: str = "enrolment"
) -> None:
    if not names.valid_id(data.patient_id) and not _valid_patient_id(data.patient_id):
        v.add("parent", "must look like patients/{patient}", "INVALID_PATIENT")
    if data.programme is None:
        v.add(f"{prefix}.programme", "is required", "PROGRAMME_REQUIRED")
    if not names.valid_id(data.practice_id):
        v.add(
            f"{prefix}.practice", "must look like organisations/{organisation}", "INVALID_PRACTICE"
        )
    if not dutch.is_agb(data.practice_agb):
        v.add(f"{prefix}.practice_agb", "an AGB code has exactly 8 digits", "INVALID_AGB_CODE")
    if data.start_time is None:
        v.add(f"{prefix}.start_time", "is required", "START_TIME_REQUIRED")
    elif data.start_time > now:
        v.add(f"{prefix}.start_time", "must not be in the future", "FUTURE_TIME")
    if not 1900 <= data.birth_year <= now.year:
        v.add(f"{prefix}.birth_year", f"between 1900 and {now.year}", "INVALID_BIRTH_YEAR")
    if data.sex is None:
        v.add(f"{prefix}.sex", "is required", "SEX_REQUIRED")
    if len(data.main_practitioner) > 200:
        v.add(f"{prefix}.main_practitioner", "at most 200 characters", "MAIN_PRACTITIONER_TOO_LONG")


def _valid_patient_id(value: str) -> bool:
    try:
        names.parse_one(f"patients/{value}", "patients")
    except InvalidArgument:
        return False
    return True


def _new_enrolment(care_group_id: str, data: EnrolmentInput, now: dt.datetime) -> Enrolment:
    assert data.programme is not None and data.sex is not None and data.start_time is not None
    return Enrolment(
        care_group_id=care_group_id,
        patient_id=data.patient_id,
        programme=data.programme.value,
        practice_id=data.practice_id,
        practice_agb=data.practice_agb,
        start_time=data.start_time,
        main_practitioner=data.main_practitioner,
        birth_year=data.birth_year,
        sex=data.sex.value,
        create_time=now,
    )


def _store_enrolment(
    uow: UnitOfWork, care_group_id: str, data: EnrolmentInput, now: dt.datetime
) -> Enrolment:
    assert data.programme is not None
    existing = uow.repo.enrolment(care_group_id, data.patient_id, data.programme.value)
    candidate = _new_enrolment(care_group_id, data, now)
    if existing is not None:
        if existing.same_as(candidate):
            return existing  # a retried registration
        raise errors.EnrolmentExists(
            "the patient is already enrolled in this programme with other details"
        )
    uow.repo.add(candidate)
    return candidate


def create_enrolment(deps: Deps, principal: Principal, data: EnrolmentInput) -> Enrolment:
    now = deps.clock()
    v = Violations()
    _validate_enrolment(data, now, v)
    v.raise_if_any()
    _refuse_insurer(principal)
    decision = deps.identity.authorize(principal, data.patient_id, "create", "enrolment")
    if not decision.permitted:
        raise errors.AccessDenied("access denied", reason=decision.reason)
    with deps.uow() as uow:
        enrolment = _store_enrolment(uow, _care_group(principal), data, now)
        uow.commit()
        return enrolment


@dataclass(frozen=True)
class EnrolmentResult:
    patient_id: str
    enrolment: Enrolment | None
    rejection_reason: str


def batch_create_enrolments(
    deps: Deps, principal: Principal, items: Sequence[EnrolmentInput]
) -> list[EnrolmentResult]:
    if not items or len(items) > MAX_ENROLMENT_BATCH:
        raise InvalidArgument.single(
            "requests", f"between 1 and {MAX_ENROLMENT_BATCH}", "INVALID_BATCH_SIZE"
        )
    _refuse_insurer(principal)
    now = deps.clock()
    reasons: dict[int, str] = {}
    for i, item in enumerate(items):
        v = Violations()
        _validate_enrolment(item, now, v)
        if v:
            reasons[i] = v.items[0].reason
    valid_patients = [it.patient_id for i, it in enumerate(items) if i not in reasons]
    decisions = (
        deps.identity.batch_authorize(principal, valid_patients, "create", "enrolment")
        if valid_patients
        else {}
    )
    results: list[EnrolmentResult] = []
    with deps.uow() as uow:
        for i, item in enumerate(items):
            if i in reasons:
                results.append(EnrolmentResult(item.patient_id, None, reasons[i]))
                continue
            decision = decisions[item.patient_id]
            if not decision.permitted:
                results.append(EnrolmentResult(item.patient_id, None, decision.reason))
                continue
            try:
                with uow.session.begin_nested():
                    enrolment = _store_enrolment(uow, _care_group(principal), item, now)
            except errors.EnrolmentExists as exc:
                results.append(EnrolmentResult(item.patient_id, None, exc.reason))
                continue
            results.append(EnrolmentResult(item.patient_id, enrolment, ""))
        uow.commit()
    return results


def list_enrolments(
    deps: Deps, principal: Principal, patient_id: str, position: dict[str, Any] | None, limit: int
) -> Page:
    _refuse_insurer(principal)
    decision = deps.identity.authorize(principal, patient_id, "read", "enrolments")
    if not decision.permitted:
        raise errors.AccessDenied("access denied", reason=decision.reason)
    with deps.uow() as uow:
        items = uow.repo.enrolments(
            _care_group(principal), patient_id, position["id"] if position else None, limit + 1
        )
    more = len(items) > limit
    items = items[:limit]
    return Page(items, {"id": items[-1].id} if more else None)


# ------------------------------------------------------------------ measurements


# (patient as sent, code, value, unit, measure time in microseconds since 1970-01-01 UTC or
#  None when absent, source kind value or None when not a known kind, source organisation as
#  sent, source record id): one row as the ingest checks it
RowValues = tuple[str, str, float, str, int | None, str | None, str, str]


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
    outcome: str  # accepted | duplicate | rejected
    reason: str = ""
    field: str = ""


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    results: list[RowResult] = field(default_factory=list)  # not-accepted rows only


def _valid_name(value: str, collection: str, cache: dict[str, bool]) -> bool:
    known = cache.get(value)
    if known is None:
        ident = value.removeprefix(f"{collection}/")
        known = value.startswith(f"{collection}/") and (
            _valid_patient_id(ident) if collection == "patients" else names.valid_id(ident)
        )
        cache[value] = known
    return known


Problem = tuple[str, str]  # (reason, field)
_OUT_OF_RANGE: Problem = ("OUT_OF_RANGE", "value")
_MEASURE_TIME_REQUIRED: Problem = ("MEASURE_TIME_REQUIRED", "measure_time")
_FUTURE_TIME: Problem = ("FUTURE_TIME", "measure_time")
_SOURCE_RECORD_ID_REQUIRED: Problem = ("SOURCE_RECORD_ID_REQUIRED", "source_record_id")
MAX_SOURCE_RECORD_ID = 128


@dataclass(eq=False, slots=True)
class _KeyCheck:
    """The checks of a row that depend only on (patient, code, unit, source kind, source
    organisation), made once per combination in a call.

    A row's first problem is, in this order: ``before`` (patient, code, unit), its value
    outside ``[low, high]``, its measure time missing or in the future, ``after`` (source
    kind, source organisation), its source record id empty or too long."""

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
    and sent again loses and duplicates nothing."""

    def __init__(self, deps: Deps, principal: Principal) -> None:
        _refuse_insurer(principal)
        self.deps = deps
        self.principal = principal
        self.care_group = _care_group(principal)
        self.result = IngestResult()
        self.decisions: dict[str, tuple[bool, str]] = {}  # patient -> (ok, reason)
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
        first = self.flushed
        self.flushed += len(chunk)
        rows, numbers, repeats = self._check_rows(chunk, first)
        if repeats:
            in_order = sorted(
                [*zip(numbers, (r[0] for r in rows), strict=True)]
                + [(n, r[0]) for n, r in repeats],
                key=itemgetter(0),
            )
            keys = list(dict.fromkeys(k for _n, k in in_order))
        else:
            keys = list(dict.fromkeys(r[0] for r in rows))
        patients = list(dict.fromkeys(k.patient_id for k in keys))
        unknown = [p for p in patients if p not in self.decisions]
        if unknown:
            decided = self.deps.identity.batch_authorize(
                self.principal, unknown, "create", "measurements"
            )
            for p, d in decided.items():
                self.decisions[p] = (d.permitted, d.reason)
        with self.deps.uow() as uow:
            permitted = [p for p in unknown if self.decisions[p][0]]
            if permitted:
                enrolled = uow.repo.enrolled(self.care_group, permitted)
                for p in permitted:
                    if p not in enrolled:
                        self.decisions[p] = (False, "NOT_ENROLLED")
            denied = {k for k in keys if not self.decisions[k.patient_id][0]}
            if denied or repeats:
                rows, numbers = self._settle(rows, numbers, repeats, denied)
            duplicates = uow.repo.insert_measurement_rows(self.care_group, self.deps.clock(), rows)
            uow.commit()
        self.result.accepted += len(rows) - len(duplicates)
        for n in duplicates:
            self._duplicate(numbers[n])

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
                elif check.after is not None:
                    problem = check.after
                elif not record or len(record) > MAX_SOURCE_RECORD_ID:
                    problem = _SOURCE_RECORD_ID_REQUIRED
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
        denied: set[MeasurementKey],
    ) -> tuple[list[MeasurementRow], list[int]]:
        """The rows to store, in row order, once identity has decided: rows of a denied
        patient are rejected with identity's reason and free their record id; then each
        repeated record id is stored when no earlier row of a permitted patient has it, and
        is a duplicate otherwise."""
        kept: list[tuple[int, MeasurementRow]] = []
        for number, row in zip(numbers, rows, strict=True):
            key = row[0]
            if key in denied:
                self._reject(number, self.decisions[key.patient_id][1], "patient")
                self.seen[(key.source_kind, key.source_org)].discard(row[3])
            else:
                kept.append((number, row))
        added = False
        for number, row in repeats:
            key = row[0]
            ok, reason = self.decisions[key.patient_id]
            seen = self.seen[(key.source_kind, key.source_org)]
            if not ok:
                self._reject(number, reason, "patient")
            elif row[3] in seen:
                self._duplicate(number)
            else:
                seen.add(row[3])
                kept.append((number, row))
                added = True
        if added:
            kept.sort(key=itemgetter(0))
        return [row for _n, row in kept], [n for n, _row in kept]

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


def list_measurements(
    deps: Deps, principal: Principal, patient_id: str, position: dict[str, Any] | None, limit: int
) -> Page:
    _refuse_insurer(principal)
    decision = deps.identity.authorize(principal, patient_id, "read", "measurements")
    if not decision.permitted:
        raise errors.AccessDenied("access denied", reason=decision.reason)
    with deps.uow() as uow:
        items: Sequence[Measurement] = uow.repo.measurements(
            _care_group(principal), patient_id, position["id"] if position else None, limit + 1
        )
    more = len(items) > limit
    items = items[:limit]
    return Page(items, {"id": items[-1].id} if more else None)


# ------------------------------------------------------------------ contracts


@dataclass(frozen=True)
class ContractIndicatorInput:
    indicator: str
    version: int
    sources: Sequence[SourceKind]
    target: float
    floor: float
    payment: str
    band: str = ""


@dataclass(frozen=True)
class ContractInput:
    display_name: str
    insurer_id: str
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    indicators: Sequence[ContractIndicatorInput]
    financing: dict[str, Any]
    principles: dict[str, str]


def _decimal(
    value: str, field_name: str, v: Violations, *, required: bool = False, rate: bool = False
) -> None:
    if not value:
        if required:
            v.add(field_name, "is required", "AMOUNT_REQUIRED")
        return
    try:
        amount = Decimal(value)
    except InvalidOperation:
        v.add(field_name, "a decimal number", "INVALID_DECIMAL")
        return
    if not amount.is_finite() or amount < 0 or (rate and amount > 1):
        v.add(field_name, "between 0 and 1" if rate else "not negative", "INVALID_DECIMAL")


def _validate_contract(contract_id: str, data: ContractInput, v: Violations) -> None:
    if not names.valid_id(contract_id):
        v.add("contract_id", "2-63 lower-case letters, digits and dashes", "INVALID_CONTRACT_ID")
    if not data.display_name.strip() or len(data.display_name) > 200:
        v.add("contract.display_name", "1-200 characters", "DISPLAY_NAME_REQUIRED")
    if not names.valid_id(data.insurer_id):
        v.add("contract.insurer", "must look like organisations/{organisation}", "INVALID_INSURER")
    if data.period_start is None or data.period_end is None or data.period_end <= data.period_start:
        v.add("contract.period_end", "a period with its end after its start", "INVALID_PERIOD")
    if not data.indicators:
        v.add("contract.indicators", "at least one", "INDICATORS_REQUIRED")
    for key in PRINCIPLES:
        text = data.principles.get(key, "")
        if not text.strip() or len(text) > 2000:
            v.add(
                f"contract.principles.{key}",
                "is required (at most 2000 characters)",
                "PRINCIPLE_REQUIRED",
            )
    _validate_financing(data, v)


def _validate_financing(data: ContractInput, v: Violations) -> None:
    f = data.financing
    model = f.get("model")
    prefix = "contract.financing"
    if model not in {m.value for m in FinancingModel}:
        v.add(f"{prefix}.model", "is required", "FINANCING_MODEL_REQUIRED")
    if model == FinancingModel.SHARED_SAVINGS:
        _decimal(
            f.get("minimum_savings_rate", ""),
            f"{prefix}.minimum_savings_rate",
            v,
            required=True,
            rate=True,
        )
        _decimal(f.get("sharing_rate", ""), f"{prefix}.sharing_rate", v, required=True, rate=True)
        _decimal(f.get("payout_cap", ""), f"{prefix}.payout_cap", v)
        if f.get("sharing_mode") not in ("first-euro", "above-threshold"):
            v.add(f"{prefix}.sharing_mode", "is required", "SHARING_MODE_REQUIRED")
        codes = {i.indicator for i in data.indicators}
        for code in f.get("quality_gate_indicators", []):
            if code not in codes:
                v.add(
                    f"{prefix}.quality_gate_indicators",
                    f"{code} is not in the contract",
                    "UNKNOWN_INDICATOR",
                )
    if model == FinancingModel.PARTIAL_CAPITATION:
        _decimal(
            f.get("capitation_per_person_year", ""),
            f"{prefix}.capitation_per_person_year",
            v,
            required=True,
        )
    if model in (FinancingModel.FEE_FOR_SERVICE, FinancingModel.BUNDLED_PAYMENT):
        _decimal(f.get("tariff", ""), f"{prefix}.tariff", v)


def _contract_indicators(
    uow: UnitOfWork, data: ContractInput, v: Violations
) -> list[dict[str, Any]]:
    """The contract's indicator terms, each pinned to a definition version."""
    latest = uow.repo.latest_definitions()
    model = data.financing.get("model")
    terms = []
    for n, item in enumerate(data.indicators):
        prefix = f"contract.indicators[{n}]"
        record = (
            uow.repo.definition(item.indicator, item.version)
            if item.version
            else latest.get(item.indicator)
        )
        if record is None:
            v.add(f"{prefix}.indicator", "unknown indicator or version", "UNKNOWN_INDICATOR")
            continue
        definition = record.definition
        if not item.sources or len(set(item.sources)) != len(item.sources):
            v.add(f"{prefix}.agreed_sources", "at least one, each once", "AGREED_SOURCES_REQUIRED")
        if item.floor > item.target and definition.get("direction") != "lower_is_better":
            v.add(f"{prefix}.floor", "must not exceed the target", "INVALID_FLOOR")
        if model == FinancingModel.PAY_FOR_PERFORMANCE:
            _decimal(item.payment, f"{prefix}.payment", v, required=True)
        labels = [b["label"] for b in definition["numerator"].get("bands", [])]
        needs_band = definition["kind"] == "bands" and (
            model == FinancingModel.PAY_FOR_PERFORMANCE or item.band
        )
        if needs_band and item.band not in labels:
            v.add(f"{prefix}.band", "name one of the indicator's bands", "INVALID_BAND")
        terms.append(
            {
                "indicator": record.code,
                "version": record.version,
                "sources": [s.value for s in item.sources],
                "target": item.target,
                "floor": item.floor,
                "payment": item.payment,
                "band": item.band,
                "direction": definition.get("direction", "higher_is_better"),
            }
        )
    return terms


def create_contract(
    deps: Deps, principal: Principal, contract_id: str, data: ContractInput, request_id: str = ""
) -> Contract:
    if not principal.has_role(ADMIN):
        raise errors.RoleNotPermitted("only the care group's administrator creates contracts")
    care_group = _care_group(principal)
    v = Violations()
    _validate_contract(contract_id, data, v)
    now = deps.clock()
    with deps.uow() as uow:
        indicator_terms = _contract_indicators(uow, data, v)
        v.raise_if_any()
        if request_id:
            replay = uow.repo.contract_by_request(care_group, request_id)
            if replay is not None:
                return replay
        if uow.repo.contract(contract_id) is not None:
            raise errors.ContractExists(
                "a contract with this id exists", metadata={"contract": f"contracts/{contract_id}"}
            )
        assert data.period_start is not None and data.period_end is not None
        terms = {
            "indicators": indicator_terms,
            "financing": dict(data.financing),
            "principles": {k: data.principles[k] for k in PRINCIPLES},
        }
        contract = Contract(
            id=contract_id,
            care_group_id=care_group,
            insurer_id=data.insurer_id,
            display_name=data.display_name.strip(),
            period_start=data.period_start,
            period_end=data.period_end,
            terms_json=canonical_json(terms),
            request_id=request_id or None,
            version=1,
            create_time=now,
            update_time=now,
        )
        uow.repo.add(contract)
        uow.commit()
        return contract


def _visible_contract(uow: UnitOfWork, principal: Principal, contract_id: str) -> Contract:
    """The contract, if the caller may see it; otherwise NOT_FOUND (never a hint it exists)."""
    if not principal.roles & REPORT_READERS:
        raise errors.RoleNotPermitted("this role does not read contracts")
    contract = uow.repo.contract(contract_id)
    if contract is None or contract.care_group_id != _care_group(principal):
        raise errors.ContractNotFound("contract not found")
    if (
        principal.has_role(INSURER)
        and not principal.has_role(ADMIN)
        and not contract.visible_to_insurer(_org(principal))
    ):
        raise errors.ContractNotFound("contract not found")
    return contract


def get_contract(deps: Deps, principal: Principal, contract_id: str) -> Contract:
    with deps.uow() as uow:
        return _visible_contract(uow, principal, contract_id)


def list_contracts(
    deps: Deps, principal: Principal, position: dict[str, Any] | None, limit: int
) -> Page:
    if not principal.roles & REPORT_READERS:
        raise errors.RoleNotPermitted("this role does not read contracts")
    insurer = (
        _org(principal) if principal.has_role(INSURER) and not principal.has_role(ADMIN) else None
    )
    with deps.uow() as uow:
        items = uow.repo.contracts(
            _care_group(principal), insurer, position["id"] if position else None, limit + 1
        )
    more = len(items) > limit
    items = items[:limit]
    return Page(items, {"id": items[-1].id} if more else None)


# ------------------------------------------------------------------ computation


def _period(
    period_start: dt.datetime | None, period_end: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    if period_start is None or period_end is None or period_end <= period_start:
        raise InvalidArgument.single(
            "period_end", "a period with its end after its start", "INVALID_PERIOD"
        )
    return period_start, period_end


def _scope_plan(uow: UnitOfWork, contract: Contract | None) -> list[dict[str, Any]]:
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
    return reporting.build_cells(results, inputs["stratifiers"])


def report_hash(inputs: dict[str, Any], cells: list[dict[str, Any]]) -> str:
    return sha256_hex(canonical_json({"inputs": inputs, "cells": cells}))


def _may_compute(principal: Principal, contract: Contract | None) -> None:
    if principal.has_role(ADMIN):
        return
    if principal.has_role(INSURER) and contract is not None:
        return  # _visible_contract already checked it is the insurer's own
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
    start, end = _period(period_start, period_end)
    now = deps.clock()
    with deps.uow() as uow:
        contract = _visible_contract(uow, principal, contract_id) if contract_id else None
        _may_compute(principal, contract)
        wanted = sorted({s.value for s in stratifiers} or {Stratifier.PRACTICE.value})
        inputs = {
            "care_group": _care_group(principal),
            "contract": contract.id if contract else "",
            "contract_terms_hash": sha256_hex(contract.terms_json) if contract else "",
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "data_cutoff": now.isoformat(),
            "stratifiers": wanted,
            "plan": _scope_plan(uow, contract),
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


def _visible_report(uow: UnitOfWork, principal: Principal, report_id: str) -> Report:
    if not principal.roles & REPORT_READERS:
        raise errors.RoleNotPermitted("this role does not read reports")
    report = uow.repo.report(report_id)
    if report is None or report.care_group_id != _care_group(principal):
        raise errors.ReportNotFound("report not found")
    if principal.has_role(INSURER) and not principal.has_role(ADMIN):
        contract = uow.repo.contract(report.contract_id) if report.contract_id else None
        if contract is None or not contract.visible_to_insurer(_org(principal)):
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
        own = _org(principal)
        return [c for c in cells if c["practice"] in ("", own)]
    return cells


def get_report(
    deps: Deps, principal: Principal, report_id: str
) -> tuple[Report, list[dict[str, Any]]]:
    with deps.uow() as uow:
        report = _visible_report(uow, principal, report_id)
    return report, visible_cells(principal, report)


def stream_report(deps: Deps, principal: Principal, report_id: str) -> Iterator[dict[str, Any]]:
    _report, cells = get_report(deps, principal, report_id)
    yield from cells


def list_reports(
    deps: Deps, principal: Principal, contract_id: str, position: dict[str, Any] | None, limit: int
) -> Page:
    if not principal.roles & REPORT_READERS:
        raise errors.RoleNotPermitted("this role does not read reports")
    with deps.uow() as uow:
        contract_ids: list[str] | None = None
        if contract_id:
            contract_ids = [_visible_contract(uow, principal, contract_id).id]
        elif principal.has_role(INSURER) and not principal.has_role(ADMIN):
            contract_ids = [
                c.id
                for c in uow.repo.contracts(_care_group(principal), _org(principal), None, 10_000)
            ]
        after = (str(position["t"]), str(position["id"])) if position else None
        items = uow.repo.reports(_care_group(principal), contract_ids, after, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return Page(
        items, {"t": items[-1].create_time.isoformat(), "id": items[-1].id} if more else None
    )


@dataclass(frozen=True)
class Verification:
    reproduced: bool
    stored_hash: str
    recomputed_hash: str


def verify_report(deps: Deps, principal: Principal, report_id: str) -> Verification:
    with deps.uow() as uow:
        report = _visible_report(uow, principal, report_id)
        inputs = report.inputs
        cells = compute_cells(uow, inputs)
    recomputed = report_hash(inputs, cells)
    return Verification(recomputed == report.content_hash, report.content_hash, recomputed)


# ------------------------------------------------------------------ source discrepancies


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
    _start, end = _period(period_start, period_end)
    now = deps.clock()
    out: list[Discrepancy] = []
    with deps.uow() as uow:
        contract = _visible_contract(uow, principal, contract_id) if contract_id else None
        _may_compute(principal, contract)
        care_group = _care_group(principal)
        for item in _scope_plan(uow, contract):
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


# ------------------------------------------------------------------ financing


@dataclass(frozen=True)
class CostInput:
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    benchmark_cost: str
    actual_cost: str
    insured_person_years: str


def record_costs(deps: Deps, principal: Principal, contract_id: str, data: CostInput) -> CostRecord:
    v = Violations()
    if data.period_start is None or data.period_end is None or data.period_end <= data.period_start:
        v.add("cost_record.period_end", "a period with its end after its start", "INVALID_PERIOD")
    _decimal(data.actual_cost, "cost_record.actual_cost", v, required=True)
    _decimal(data.benchmark_cost, "cost_record.benchmark_cost", v)
    _decimal(data.insured_person_years, "cost_record.insured_person_years", v)
    v.raise_if_any()
    now = deps.clock()
    with deps.uow() as uow:
        contract = _visible_contract(uow, principal, contract_id)
        if not principal.has_role(INSURER, ADMIN):
            raise errors.RoleNotPermitted("costs are recorded by the contract's insurer")
        assert data.period_start is not None and data.period_end is not None
        record = CostRecord(
            id=uuid.uuid4().hex,
            contract_id=contract.id,
            period_start=data.period_start,
            period_end=data.period_end,
            benchmark_cost=data.benchmark_cost,
            actual_cost=data.actual_cost,
            insured_person_years=data.insured_person_years,
            recorded_by=principal.responsible_user,
            create_time=now,
        )
        uow.repo.add(record)
        uow.commit()
        return record


@dataclass(frozen=True)
class ContractEvaluation:
    model: str
    evaluation: financing.Evaluation
    report_id: str
    cost_record_id: str


def _total_score(cells: list[dict[str, Any]], code: str, band: str) -> Decimal | None:
    for c in cells:
        if (
            c["indicator"] == code
            and c["practice"] == ""
            and c["age_band"] == ""
            and c["sex"] == ""
            and c["band"] == band
        ):
            return None if c["score"] is None else Decimal(str(c["score"]))
    return None


def evaluate_contract(
    deps: Deps,
    principal: Principal,
    contract_id: str,
    period_start: dt.datetime | None,
    period_end: dt.datetime | None,
    report_id: str = "",
) -> ContractEvaluation:
    start, end = _period(period_start, period_end)
    with deps.uow() as uow:
        contract = _visible_contract(uow, principal, contract_id)
        terms = contract.terms
        model = terms["financing"]["model"]
        report = None
        if report_id:
            report = _visible_report(uow, principal, report_id)
            if report.contract_id != contract.id:
                raise InvalidArgument.single(
                    "report", "is not a report of this contract", "REPORT_OF_OTHER_CONTRACT"
                )
        elif model in (FinancingModel.PAY_FOR_PERFORMANCE, FinancingModel.SHARED_SAVINGS):
            report = uow.repo.latest_report(contract.id, start, end)
        costs = uow.repo.latest_costs(contract.id, start, end)
    cells = report.cells if report else []
    f = terms["financing"]
    definitions_dir = {t["indicator"]: t for t in terms["indicators"]}

    def term(code: str) -> financing.IndicatorTerm:
        t = definitions_dir[code]
        return financing.IndicatorTerm(
            indicator=code,
            score=_total_score(cells, code, t.get("band", "")),
            target=Decimal(str(t["target"])),
            floor=Decimal(str(t["floor"])),
            payment=Decimal(t["payment"] or "0"),
            lower_is_better=t.get("direction") == "lower_is_better",
        )

    if (
        model in (FinancingModel.PAY_FOR_PERFORMANCE, FinancingModel.SHARED_SAVINGS)
        and report is None
    ):
        raise errors.ReportRequired("compute a report for this contract and period first")
    if model == FinancingModel.PAY_FOR_PERFORMANCE:
        evaluation = financing.pay_for_performance([term(c) for c in definitions_dir])
    elif model == FinancingModel.SHARED_SAVINGS:
        if costs is None or not costs.benchmark_cost:
            raise errors.CostsRequired("the insurer has not recorded benchmark and actual costs")
        gate_codes = f.get("quality_gate_indicators") or list(definitions_dir)
        evaluation = financing.shared_savings(
            benchmark=Decimal(costs.benchmark_cost),
            actual=Decimal(costs.actual_cost),
            minimum_savings_rate=Decimal(f["minimum_savings_rate"]),
            sharing_rate=Decimal(f["sharing_rate"]),
            first_euro=f["sharing_mode"] == "first-euro",
            gate=[term(c) for c in gate_codes],
            cap=Decimal(f["payout_cap"]) if f.get("payout_cap") else None,
        )
    elif model == FinancingModel.PARTIAL_CAPITATION:
        if costs is None or not costs.insured_person_years:
            raise errors.CostsRequired(
                "the insurer has not recorded actual costs and insured person-years"
            )
        evaluation = financing.capitation(
            per_person_year=Decimal(f["capitation_per_person_year"]),
            person_years=Decimal(costs.insured_person_years),
            actual=Decimal(costs.actual_cost),
        )
    else:
        evaluation = financing.Evaluation(
            Decimal("0.00"),
            [
                financing.Line(
                    "recorded model",
                    Decimal("0.00"),
                    "fee for service and bundled payment are recorded, not evaluated",
                    {"tariff": f.get("tariff", "")},
                )
            ],
        )
    return ContractEvaluation(
        model, evaluation, report.id if report else "", costs.id if costs else ""
    )


def calculate_sroi(
    principal: Principal,
    investments: Sequence[sroi.Investment],
    outcomes: Sequence[sroi.Outcome],
    rate: Decimal,
) -> sroi.SroiResult:
    if not principal.roles & REPORT_READERS:
        raise errors.RoleNotPermitted("this role does not compute business cases")
    return sroi.calculate(investments, outcomes, rate)

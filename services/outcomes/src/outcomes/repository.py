"""The only place the outcomes service runs queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg.errors
from sqlalchemy import bindparam, select, text, update

from outcomes.binary_copy import BATCH_COLUMNS, binary_copy
from outcomes.models import (
    Contract,
    CostRecord,
    Enrolment,
    IndicatorDefinitionRecord,
    Measurement,
    MeasurementRevision,
    Report,
)
from outcomes.turns import LOCK_INGEST, LOCK_REPORTS, take_turn, take_turn_within
from servicekit.db import UtcDateTime
from servicekit.uow import Repository

# (care_group_id, patient_id, code, value, unit, measured_at, source_kind, source_org,
#  source_record_id, ingested_at)
MeasurementTuple = tuple[str, str, str, float, str, dt.datetime, str, str, str, dt.datetime]
SourceKey = tuple[str, str, str]


@dataclass(frozen=True, eq=False, slots=True)
class MeasurementKey:
    """What a run of ingested rows has in common; compared by identity, so that one object
    stands for one combination during an ingest."""

    patient_id: str
    code: str
    unit: str
    source_kind: str
    source_org: str


# (key, value, measured_at in microseconds since 1970-01-01 UTC, source_record_id)
MeasurementRow = tuple[MeasurementKey, float, int, str]


@dataclass(frozen=True, slots=True)
class StoredMeasurement:
    """The stored row under a source key that an ingested row found taken."""

    id: int
    care_group_id: str
    patient_id: str
    code: str
    value: float
    unit: str
    measured_micros: int
    source_kind: str
    holder_id: str
    ingested_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Correction:
    """A stored measurement and the value and time that replace it."""

    stored: StoredMeasurement
    value: float
    measured_micros: int

    def revision(self, now: dt.datetime) -> MeasurementRevision:
        """The replaced value, current from its receipt until ``now``."""
        old = self.stored
        return MeasurementRevision(
            measurement_id=old.id,
            care_group_id=old.care_group_id,
            patient_id=old.patient_id,
            code=old.code,
            value=old.value,
            unit=old.unit,
            measured_at=from_micros(old.measured_micros),
            source_kind=old.source_kind,
            ingested_at=old.ingested_at,
            superseded_at=now,
        )


# The columns of a MeasurementTuple; the record holder is given separately.
MEASUREMENT_COLUMNS = (
    "care_group_id",
    "patient_id",
    "code",
    "value",
    "unit",
    "measured_at",
    "source_kind",
    "source_org",
    "source_record_id",
    "ingested_at",
)
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS measurement_staging ("
    "care_group_id text, patient_id text, code text, value float8, unit text, "
    "measured_at timestamptz, source_kind text, source_org text, source_record_id text, "
    "ingested_at timestamptz, holder_id text) ON COMMIT DELETE ROWS"
)
_COLS = ", ".join((*MEASUREMENT_COLUMNS, "holder_id"))
_MOVE = (
    f"INSERT INTO measurements ({_COLS}) SELECT {_COLS} FROM measurement_staging "  # noqa: S608
    "ON CONFLICT ON CONSTRAINT uq_measurements_source_record DO NOTHING "
    "RETURNING source_kind, source_org, source_record_id"
)
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MOVE_BATCH = (
    f"INSERT INTO measurements ({BATCH_COLUMNS}) "  # noqa: S608
    f"SELECT {BATCH_COLUMNS} FROM measurement_staging "
    "ON CONFLICT ON CONSTRAINT uq_measurements_source_record DO NOTHING "
    "RETURNING source_kind, source_org, source_record_id"
)
# The stored rows under the source keys of the staged rows that were not inserted, locked
# until the chunk commits (so that two corrections of one record are applied one after the
# other, each keeping the value it replaced).
_TAKEN = (
    "SELECT source_kind, source_org, source_record_id, m.id, m.care_group_id, "
    "m.patient_id, m.code, m.value, m.unit, m.measured_at, m.holder_id, m.ingested_at, "
    "source_kind "
    "FROM measurements m JOIN measurement_staging s USING (holder_id, source_kind, "
    "source_org, source_record_id) FOR UPDATE OF m"
)


def unix_micros(moment: dt.datetime) -> int:
    return (moment - _UNIX_EPOCH) // dt.timedelta(microseconds=1)


def from_micros(micros: int) -> dt.datetime:
    return _UNIX_EPOCH + dt.timedelta(microseconds=micros)


def _stored(row: Sequence[Any]) -> StoredMeasurement:
    """A StoredMeasurement from (id, care_group_id, patient_id, code, value, unit,
    measured_at, holder_id, ingested_at, source_kind)."""
    return StoredMeasurement(
        id=int(row[0]),
        care_group_id=str(row[1]),
        patient_id=str(row[2]),
        code=str(row[3]),
        value=float(row[4]),
        unit=str(row[5]),
        measured_micros=unix_micros(row[6]),
        holder_id=str(row[7]),
        ingested_at=row[8],
        source_kind=str(row[9]),
    )


_TYPES = [
    "text",
    "text",
    "text",
    "float8",
    "text",
    "timestamptz",
    "text",
    "text",
    "text",
    "timestamptz",
    "text",
]
_TIMES = ("cutoff", "enrolled_by", "window_start", "period_end")


@dataclass(slots=True)
class ContractRequest:
    method: str
    resource_name: str
    fingerprint: str


class ContractRequests:
    """CreateContract's request records (servicekit.idempotency.RequestRecords): the contract
    row keeps the request_id and fingerprint of the create that wrote it, per care group, so
    a retry by any administrator of the care group finds it; nothing is written apart."""

    def __init__(self, repo: OutcomesRepository, care_group_id: str) -> None:
        self._repo = repo
        self._care_group_id = care_group_id

    def request_record(self, caller: str, request_id: str) -> ContractRequest | None:
        contract = self._repo.contract_by_request(self._care_group_id, request_id)
        if contract is None:
            return None
        return ContractRequest("CreateContract", f"contracts/{contract.id}", contract.fingerprint)

    def add_request_record(
        self, caller: str, request_id: str, method: str, fingerprint: str, resource_name: str
    ) -> None:
        """The contract row written in the same transaction is the record."""


class OutcomesRepository(Repository):
    """The only place this service runs queries (see :class:`servicekit.uow.Repository`)."""

    # enrolments
    def enrolment(self, care_group_id: str, patient_id: str, programme: str) -> Enrolment | None:
        return self.session.scalars(
            select(Enrolment).where(
                Enrolment.care_group_id == care_group_id,
                Enrolment.patient_id == patient_id,
                Enrolment.programme == programme,
            )
        ).one_or_none()

    def enrolments(
        self,
        care_group_id: str,
        patient_id: str,
        practices: Sequence[str],
        after: int | None,
        limit: int,
    ) -> Sequence[Enrolment]:
        """A patient's enrolments at one of ``practices``, in id order."""
        query = select(Enrolment).where(
            Enrolment.care_group_id == care_group_id,
            Enrolment.patient_id == patient_id,
            Enrolment.practice_id.in_(list(practices)),
        )
        if after is not None:
            query = query.where(Enrolment.id > after)
        return self.session.scalars(query.order_by(Enrolment.id).limit(limit)).all()

    def enrolment_practices(self, care_group_id: str, patient_id: str) -> list[str]:
        """The practices of a patient's enrolments (their record holders)."""
        return sorted(
            self.session.scalars(
                select(Enrolment.practice_id)
                .where(Enrolment.care_group_id == care_group_id, Enrolment.patient_id == patient_id)
                .distinct()
            )
        )

    def enrolled(self, care_group_id: str, patient_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(patient_ids))
        found: set[str] = set()
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            found.update(
                self.session.scalars(
                    select(Enrolment.patient_id)
                    .where(
                        Enrolment.care_group_id == care_group_id, Enrolment.patient_id.in_(chunk)
                    )
                    .distinct()
                )
            )
        return found

    # measurements
    def insert_measurements(
        self, rows: Sequence[MeasurementTuple], holders: Sequence[str] | None = None
    ) -> set[SourceKey]:
        """Inserts rows whose source key is new; returns the keys actually inserted (operator
        seeding and tests). ``holders`` are the rows' record holders; by default each row's
        supplying organisation.

        Binary COPY into a session-local staging table, then one INSERT ... SELECT ... ON
        CONFLICT DO NOTHING RETURNING.
        """
        if not rows:
            return set()
        held = [(*row, holders[n] if holders is not None else row[7]) for n, row in enumerate(rows)]
        return self._copy_measurements(held)

    def insert_measurement_rows(
        self,
        care_group_id: str,
        holder_id: str,
        ingested_at: dt.datetime,
        rows: Sequence[MeasurementRow],
    ) -> dict[int, StoredMeasurement]:
        """Inserts the rows whose source key is new; for those that were not inserted
        because their source key exists already, returns (by position in ``rows``) the
        stored row under that key, locked until the transaction ends.

        One binary COPY straight into ``measurements`` inside a savepoint; when a source key
        exists already the savepoint is rolled back and the same COPY data goes through the
        staging table and INSERT ... ON CONFLICT DO NOTHING RETURNING.
        """
        if not rows:
            return {}
        data = binary_copy(care_group_id, holder_id, unix_micros(ingested_at), rows)
        found = self._copy_batch(data)
        if found is None:
            return {}
        inserted, taken = found
        return {
            n: taken[(key.source_kind, key.source_org, record)]
            for n, (key, _value, _micros, record) in enumerate(rows)
            if (key.source_kind, key.source_org, record) not in inserted
        }

    def _copy_batch(
        self, data: bytes
    ) -> tuple[set[SourceKey], dict[SourceKey, StoredMeasurement]] | None:
        """None when every row was new, else the source keys that were inserted and the
        stored rows under the staged keys."""
        raw: Any = self.session.connection().connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute("SAVEPOINT measurement_copy")
            try:
                with cursor.copy(
                    f"COPY measurements ({BATCH_COLUMNS}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.write(data)
            except psycopg.errors.UniqueViolation:
                cursor.execute("ROLLBACK TO SAVEPOINT measurement_copy")
            else:
                cursor.execute("RELEASE SAVEPOINT measurement_copy")
                return None
            cursor.execute(_STAGING)
            cursor.execute("TRUNCATE measurement_staging")
            with cursor.copy(
                f"COPY measurement_staging ({BATCH_COLUMNS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.write(data)
            cursor.execute(_MOVE_BATCH)
            inserted = {(k, o, r) for k, o, r in cursor.fetchall()}
            cursor.execute(_TAKEN)
            taken = {(r[0], r[1], r[2]): _stored(r[3:]) for r in cursor.fetchall()}
            return inserted, taken

    def correct_measurements(self, corrections: Sequence[Correction], now: dt.datetime) -> None:
        """Each stored measurement takes its new value and time (received ``now``); the
        value it had moves to ``measurement_revisions`` with the span it was current."""
        for c in corrections:
            self.session.add(c.revision(now))
            self.session.execute(
                update(Measurement)
                .where(Measurement.id == c.stored.id)
                .values(value=c.value, measured_at=from_micros(c.measured_micros), ingested_at=now)
            )
        self.session.flush()

    def _copy_measurements(self, rows: Sequence[tuple[Any, ...]]) -> set[SourceKey]:
        raw: Any = self.session.connection().connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute(_STAGING)
            cursor.execute("TRUNCATE measurement_staging")
            with cursor.copy(
                f"COPY measurement_staging ({_COLS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(_TYPES)
                for row in rows:
                    copy.write_row(row)
            cursor.execute(_MOVE)
            return {(k, o, r) for k, o, r in cursor.fetchall()}

    def lock_holder_measurements(
        self, care_group_id: str, holder_id: str, timeout_seconds: float
    ) -> bool:
        """Until the transaction ends, no other transaction that asks for the same lock
        (an ingest of this record holder in this care group) goes on: the holder's ingests
        take turns, so what one finds stored under the holder's source keys stays so until
        it commits. False when the lock was not granted within ``timeout_seconds`` (the
        transaction is then aborted: roll it back); the timeout applies to this wait only."""
        return take_turn_within(
            self.session, LOCK_INGEST, care_group_id, holder_id, timeout_seconds
        )

    def stored_sources(
        self, holder_id: str, keys: Iterable[SourceKey]
    ) -> dict[SourceKey, StoredMeasurement]:
        """The record holder's stored measurements under these source keys (source kind,
        source organisation, source record id), by key: one statement on the unique key."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        kinds, orgs, records = (list(column) for column in zip(*wanted, strict=True))
        found = self.session.execute(
            text(
                "SELECT m.source_kind, m.source_org, m.source_record_id, m.id, "
                "m.care_group_id, m.patient_id, m.code, m.value, m.unit, m.measured_at, "
                "m.holder_id, m.ingested_at, m.source_kind FROM measurements m "
                "JOIN unnest(CAST(:kinds AS text[]), CAST(:orgs AS text[]), "
                "CAST(:records AS text[])) AS k(source_kind, source_org, source_record_id) "
                "USING (source_kind, source_org, source_record_id) "
                "WHERE m.holder_id = :holder"
            ),
            {"kinds": kinds, "orgs": orgs, "records": records, "holder": holder_id},
        ).all()
        return {(str(r[0]), str(r[1]), str(r[2])): _stored(r[3:]) for r in found}

    def measurement_holders(self, care_group_id: str, patient_id: str) -> list[str]:
        """The record holders of a patient's measurements, in a stable order."""
        return sorted(
            self.session.scalars(
                select(Measurement.holder_id)
                .where(
                    Measurement.care_group_id == care_group_id,
                    Measurement.patient_id == patient_id,
                )
                .distinct()
            )
        )

    def measurements(
        self,
        care_group_id: str,
        patient_id: str,
        holders: Sequence[str],
        after: int | None,
        limit: int,
    ) -> Sequence[Measurement]:
        """A patient's measurements held by one of ``holders``, in id order."""
        query = select(Measurement).where(
            Measurement.care_group_id == care_group_id,
            Measurement.patient_id == patient_id,
            Measurement.holder_id.in_(list(holders)),
        )
        if after is not None:
            query = query.where(Measurement.id > after)
        return self.session.scalars(query.order_by(Measurement.id).limit(limit)).all()

    def revisions(self, measurement_ids: Sequence[int]) -> dict[int, list[MeasurementRevision]]:
        """The replaced values of the measurements, oldest first."""
        out: dict[int, list[MeasurementRevision]] = {}
        if not measurement_ids:
            return out
        for r in self.session.scalars(
            select(MeasurementRevision)
            .where(MeasurementRevision.measurement_id.in_(list(measurement_ids)))
            .order_by(MeasurementRevision.measurement_id, MeasurementRevision.id)
        ):
            out.setdefault(r.measurement_id, []).append(r)
        return out

    def source_kinds(self, care_group_id: str, codes: Sequence[str]) -> list[str]:
        return sorted(
            self.session.scalars(
                select(Measurement.source_kind)
                .where(Measurement.care_group_id == care_group_id, Measurement.code.in_(codes))
                .distinct()
            )
        )

    # indicator definitions
    def definition(self, code: str, version: int) -> IndicatorDefinitionRecord | None:
        return self.session.get(IndicatorDefinitionRecord, (code, version))

    def definitions(
        self, after: tuple[str, int] | None, limit: int
    ) -> Sequence[IndicatorDefinitionRecord]:
        query = select(IndicatorDefinitionRecord)
        if after is not None:
            code, version = after
            query = query.where(
                (IndicatorDefinitionRecord.code > code)
                | (
                    (IndicatorDefinitionRecord.code == code)
                    & (IndicatorDefinitionRecord.version > version)
                )
            )
        return self.session.scalars(
            query.order_by(IndicatorDefinitionRecord.code, IndicatorDefinitionRecord.version).limit(
                limit
            )
        ).all()

    def latest_definitions(self) -> dict[str, IndicatorDefinitionRecord]:
        latest: dict[str, IndicatorDefinitionRecord] = {}
        for record in self.session.scalars(
            select(IndicatorDefinitionRecord).order_by(
                IndicatorDefinitionRecord.code, IndicatorDefinitionRecord.version
            )
        ):
            latest[record.code] = record
        return latest

    # contracts
    def contract(self, contract_id: str) -> Contract | None:
        return self.session.get(Contract, contract_id)

    def contract_by_request(self, care_group_id: str, request_id: str) -> Contract | None:
        return self.session.scalars(
            select(Contract).where(
                Contract.care_group_id == care_group_id, Contract.request_id == request_id
            )
        ).one_or_none()

    def contract_requests(self, care_group_id: str) -> ContractRequests:
        """CreateContract's request records in a care group (servicekit.idempotency)."""
        return ContractRequests(self, care_group_id)

    def contracts(
        self, care_group_id: str, insurer_id: str | None, after: str | None, limit: int
    ) -> Sequence[Contract]:
        query = select(Contract).where(Contract.care_group_id == care_group_id)
        if insurer_id is not None:
            query = query.where(Contract.insurer_id == insurer_id)
        if after:
            query = query.where(Contract.id > after)
        return self.session.scalars(query.order_by(Contract.id).limit(limit)).all()

    # reports
    def lock_report_history(self, care_group_id: str, contract_id: str | None) -> None:
        """Until the transaction ends, no other report of the contract (or care-group
        report of the care group) is computed: each compares with the ones before it."""
        take_turn(self.session, LOCK_REPORTS, care_group_id, contract_id or "")

    def report(self, report_id: str) -> Report | None:
        return self.session.get(Report, report_id)

    def reports(
        self,
        care_group_id: str,
        contract_ids: Sequence[str] | None,
        after: tuple[dt.datetime, str] | None,
        limit: int,
    ) -> Sequence[Report]:
        query = select(Report).where(Report.care_group_id == care_group_id)
        if contract_ids is not None:
            query = query.where(Report.contract_id.in_(contract_ids))
        if after is not None:
            moment, rid = after
            query = query.where(
                (Report.create_time < moment) | ((Report.create_time == moment) & (Report.id < rid))
            )
        return self.session.scalars(
            query.order_by(Report.create_time.desc(), Report.id.desc()).limit(limit)
        ).all()

    def latest_report(
        self, contract_id: str, period_start: dt.datetime, period_end: dt.datetime
    ) -> Report | None:
        return self.session.scalars(
            select(Report)
            .where(
                Report.contract_id == contract_id,
                Report.period_start == period_start,
                Report.period_end == period_end,
            )
            .order_by(Report.create_time.desc(), Report.id.desc())
            .limit(1)
        ).first()

    # costs
    def latest_costs(
        self, contract_id: str, period_start: dt.datetime, period_end: dt.datetime
    ) -> CostRecord | None:
        return self.session.scalars(
            select(CostRecord)
            .where(
                CostRecord.contract_id == contract_id,
                CostRecord.period_start == period_start,
                CostRecord.period_end == period_end,
            )
            .order_by(CostRecord.create_time.desc(), CostRecord.id.desc())
            .limit(1)
        ).first()

    def cost_record(self, cost_id: str) -> CostRecord | None:
        return self.session.get(CostRecord, cost_id)

    # computation
    def run_indicator(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Runs a statement generated by :func:`outcomes.indicators.build_sql`."""
        statement = text(sql).bindparams(
            *[bindparam(name, type_=UtcDateTime()) for name in _TIMES if name in params]
        )
        return [tuple(row) for row in self.session.execute(statement, dict(params))]

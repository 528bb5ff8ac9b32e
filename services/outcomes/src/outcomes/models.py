"""The outcomes data model, with its rules as methods.

Enrolments and measurements are patient data (identity's data category MEASUREMENTS) and
are only ever stored under internal patient ids; no BSN reaches this service. Indicator
definitions, reports and cost records are append-only: a (code, version) or a report never
changes once written.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.db import UtcDateTime, new_metadata, utcnow


class Programme(enum.StrEnum):
    DM2 = "DM2"
    COPD = "COPD"
    CVRM = "CVRM"


class Sex(enum.StrEnum):
    FEMALE = "F"
    MALE = "M"
    OTHER = "X"


class SourceKind(enum.StrEnum):
    KIS = "KIS"
    LAB = "LAB"
    HOSPITAL = "HOSPITAL"
    INSURER_CLAIMS = "INSURER_CLAIMS"
    LIFESTYLE_PROVIDER = "LIFESTYLE_PROVIDER"
    PATIENT = "PATIENT"


# Priority of sources when no contract names them (scope reports): clinical systems first.
DEFAULT_SOURCE_PRIORITY: tuple[SourceKind, ...] = (
    SourceKind.KIS,
    SourceKind.LAB,
    SourceKind.HOSPITAL,
    SourceKind.LIFESTYLE_PROVIDER,
    SourceKind.PATIENT,
    SourceKind.INSURER_CLAIMS,
)


class FinancingModel(enum.StrEnum):
    PAY_FOR_PERFORMANCE = "pay-for-performance"
    SHARED_SAVINGS = "shared-savings"
    PARTIAL_CAPITATION = "partial-capitation"
    FEE_FOR_SERVICE = "fee-for-service"
    BUNDLED_PAYMENT = "bundled-payment"


class Stratifier(enum.StrEnum):
    PRACTICE = "practice"
    AGE_BAND = "age_band"
    SEX = "sex"


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, floats as repr (exact round trip)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Base(DeclarativeBase):
    metadata = new_metadata()


class Enrolment(Base):
    """A patient in a chain-care programme. Immutable once created: reports recompute."""

    __tablename__ = "enrolments"
    __table_args__ = (
        UniqueConstraint(
            "care_group_id", "patient_id", "programme", name="uq_enrolments_patient_programme"
        ),
        Index("ix_enrolments_scope", "care_group_id", "programme", "patient_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger(), primary_key=True, autoincrement=True)
    care_group_id: Mapped[str] = mapped_column(String(63))
    patient_id: Mapped[str] = mapped_column(String(128))
    programme: Mapped[str] = mapped_column(String(8))
    practice_id: Mapped[str] = mapped_column(String(63))
    practice_agb: Mapped[str] = mapped_column(String(8))
    start_time: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    main_practitioner: Mapped[str] = mapped_column(String(200), default="")
    birth_year: Mapped[int] = mapped_column(Integer)
    sex: Mapped[str] = mapped_column(String(1))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    def same_as(self, other: Enrolment) -> bool:
        return (
            self.practice_id == other.practice_id
            and self.practice_agb == other.practice_agb
            and self.start_time == other.start_time
            and self.birth_year == other.birth_year
            and self.sex == other.sex
        )


class Measurement(Base):
    """One value from one source. (source kind, source organisation, source record id) is
    unique, so that a retried batch never duplicates; a resend of the same record with
    another value or time is a correction: the row takes the new value and the one it
    replaces moves to :class:`MeasurementRevision`.

    ``holder_id`` is the record holder: the organisation that submitted the row (the
    ingesting user's organisation), whose record the value comes from. Reading a
    measurement asks identity for the reader's access to *that* organisation's record, so
    consent applies whenever the reader is not the holder. Empty means no holder was
    recorded (rows bulk-loaded outside the API): such rows count in reports but are read by
    nobody through the API."""

    __tablename__ = "measurements"
    __table_args__ = (
        UniqueConstraint(
            "holder_id",
            "source_kind",
            "source_org",
            "source_record_id",
            name="uq_measurements_source_record",
        ),
        Index("ix_measurements_patient_code", "care_group_id", "code", "patient_id", "measured_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger(), primary_key=True, autoincrement=True)
    care_group_id: Mapped[str] = mapped_column(String(63))
    patient_id: Mapped[str] = mapped_column(String(128))
    code: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    measured_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    source_kind: Mapped[str] = mapped_column(String(24))
    source_org: Mapped[str] = mapped_column(String(63))
    source_record_id: Mapped[str] = mapped_column(String(128))
    # When the current value was received (the first ingest, or the latest correction).
    ingested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    holder_id: Mapped[str] = mapped_column(String(63), server_default="", default="")


class MeasurementRevision(Base):
    """A value a correction replaced: what it was, and from when until when it was the
    measurement's value. Reports computed with a data cut-off inside that span use it, so
    that they recompute to the same cells after the correction."""

    __tablename__ = "measurement_revisions"
    __table_args__ = (
        Index("ix_measurement_revisions_patient_code", "care_group_id", "code", "patient_id"),
        Index("ix_measurement_revisions_measurement", "measurement_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger(), primary_key=True, autoincrement=True)
    measurement_id: Mapped[int] = mapped_column(BigInteger())
    care_group_id: Mapped[str] = mapped_column(String(63))
    patient_id: Mapped[str] = mapped_column(String(128))
    code: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    measured_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    source_kind: Mapped[str] = mapped_column(String(24))
    ingested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    superseded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class IndicatorDefinitionRecord(Base):
    """One immutable version of a declarative indicator definition."""

    __tablename__ = "indicator_definitions"

    code: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    condition: Mapped[str] = mapped_column(String(8))
    definition_json: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    @property
    def definition(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.definition_json)
        return value


class Contract(Base):
    """An agreement between a care group and an insurer. ``terms_json`` holds the indicator
    set with agreed sources and targets, the financing terms and the nine principles."""

    __tablename__ = "contracts"
    __table_args__ = (
        UniqueConstraint("care_group_id", "request_id", name="uq_contracts_request"),
        Index("ix_contracts_insurer", "insurer_id"),
    )

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    care_group_id: Mapped[str] = mapped_column(String(63), index=True)
    insurer_id: Mapped[str] = mapped_column(String(63))
    display_name: Mapped[str] = mapped_column(String(200))
    period_start: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    period_end: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    terms_json: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(100))
    # servicekit.idempotency.fingerprint_of the CreateContract request that created it.
    fingerprint: Mapped[str] = mapped_column(String(64), server_default="", default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    @property
    def terms(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.terms_json)
        return value

    @property
    def etag(self) -> str:
        return sha256_hex(f"{self.id}:{self.version}:{self.terms_json}")[:16]

    def visible_to_insurer(self, insurer_id: str) -> bool:
        return self.insurer_id == insurer_id


class Report(Base):
    """An immutable snapshot: the inputs (``inputs_json``), the cells (``cells_json``) and
    the sha256 over both (``content_hash``)."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_contract", "contract_id", "period_start"),)

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    care_group_id: Mapped[str] = mapped_column(String(63), index=True)
    contract_id: Mapped[str | None] = mapped_column(String(63))
    period_start: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    period_end: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    data_cutoff: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    inputs_json: Mapped[str] = mapped_column(Text)
    cells_json: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    cell_count: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    @property
    def inputs(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.inputs_json)
        return value

    @property
    def cells(self) -> list[dict[str, Any]]:
        value: list[dict[str, Any]] = json.loads(self.cells_json)
        return value


class CostRecord(Base):
    """Cost inputs from the insurer for one contract period (the latest record counts)."""

    __tablename__ = "cost_records"
    __table_args__ = (
        Index("ix_cost_records_contract", "contract_id", "period_start", "period_end"),
    )

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    contract_id: Mapped[str] = mapped_column(String(63))
    period_start: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    period_end: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    benchmark_cost: Mapped[str] = mapped_column(String(40), default="")
    actual_cost: Mapped[str] = mapped_column(String(40))
    insured_person_years: Mapped[str] = mapped_column(String(40), default="")
    recorded_by: Mapped[str] = mapped_column(String(200))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

"""The PostgreSQL binary COPY stream of a batch of ingested measurement rows, which the
repository (repository.py) writes into ``measurements`` or its staging table.

The stream lists the columns that a run of rows shares first (``BATCH_COLUMNS``), so that
each row is one prefix per MeasurementKey followed by its value, time and record id.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from outcomes.repository import MeasurementKey, MeasurementRow

BATCH_COLUMNS = (
    "care_group_id, ingested_at, holder_id, patient_id, code, unit, source_kind, source_org, "
    "value, measured_at, source_record_id"
)
_BATCH_FIELDS = 11
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_ROW_TAIL = struct.Struct(">idiqi")  # float8 value, timestamptz, length of the record id
_PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01, PostgreSQL's epoch, in Unix microseconds


def _text(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">i", len(data)) + data


def binary_copy(
    care_group_id: str, holder_id: str, ingested_micros: int, rows: Sequence[MeasurementRow]
) -> bytes:
    """The rows as one PostgreSQL binary COPY stream in ``BATCH_COLUMNS`` order, received at
    ``ingested_micros`` (microseconds since 1970-01-01 UTC)."""
    shared = (
        struct.pack(">h", _BATCH_FIELDS)
        + _text(care_group_id)
        + struct.pack(">iq", 8, ingested_micros - _PG_EPOCH_US)
        + _text(holder_id)
    )
    prefixes: dict[MeasurementKey, bytes] = {}
    tail = _ROW_TAIL.pack
    parts = [_COPY_HEADER]
    append = parts.append
    for key, value, micros, record in rows:
        prefix = prefixes.get(key)
        if prefix is None:
            prefix = prefixes[key] = shared + b"".join(
                _text(v)
                for v in (key.patient_id, key.code, key.unit, key.source_kind, key.source_org)
            )
        data = record.encode()
        append(prefix + tail(8, value, 8, micros - _PG_EPOCH_US, len(data)) + data)
    append(_COPY_TRAILER)
    return b"".join(parts)

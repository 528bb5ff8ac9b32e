"""Helpers for the API tests: patients registered in the real identity service, rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.outcomes.v1 import outcomes_pb2 as pb
from carenet.outcomes.v1 import outcomes_service_pb2 as rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as rpc_grpc
from testkit.fixtures import IdentityService, valid_bsn

#: BSNs from 400,000,000 to 500,000,000 are kept for these tests: identity is one server for
#: the whole run, and a BSN that another test registered under another id would not be this
#: patient. Each prefix takes the next slot of 10,000 numbers, the same one every time.
_BSN_BASE = 400_000_000
_BSN_SLOTS = 100
_slots: dict[str, int] = {}


def register_patients(identity: IdentityService, token: str, prefix: str, count: int) -> list[str]:
    """Registers patients through identity's API as the clinician of ``token``, whose
    practice gets a coordinating care relationship with each (repeatable)."""
    slot = _slots.setdefault(prefix, len(_slots))
    if slot >= _BSN_SLOTS or count > 10_000:
        raise ValueError("out of test BSNs: widen the range")
    ids = []
    for n in range(count):
        patient_id = f"{prefix}-{n:04d}"
        bsn = valid_bsn(slot * 10_000 + n, base=_BSN_BASE)
        identity.register_patient(token, patient_id, bsn)
        ids.append(patient_id)
    return ids


def ts(moment: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(moment)
    return out


Metadata = tuple[tuple[str, str]]


def enrol(
    stub: rpc_grpc.OutcomesServiceStub,
    who: Metadata,
    patient: str,
    practice: str = "gp-de-linde",
    agb: str = "01012345",
) -> None:
    """Enrols ``patient`` (repeatable: an enrolment that exists already is kept)."""
    try:
        stub.CreateEnrolment(enrolment_request(patient, practice, agb), metadata=who, timeout=10)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise


def enrolment_request(
    patient: str, practice: str = "gp-de-linde", agb: str = "01012345"
) -> rpc.CreateEnrolmentRequest:
    return rpc.CreateEnrolmentRequest(
        parent=f"patients/{patient}",
        enrolment=pb.Enrolment(
            programme=pb.PROGRAMME_DM2,
            practice=f"organisations/{practice}",
            practice_agb=agb,
            start_time=ts(dt.datetime(2020, 3, 1, tzinfo=dt.UTC)),
            main_practitioner="kis-user-1",
            birth_year=1958,
            sex=pb.SEX_FEMALE,
        ),
    )


def row(patient: str, record: str, value: float = 52.0, **overrides: object) -> rpc.MeasurementRow:
    base: dict[str, object] = {
        "patient": f"patients/{patient}",
        "code": "HBA1C",
        "value": value,
        "unit": "mmol/mol",
        "measure_time": ts(dt.datetime(2025, 6, 1, tzinfo=dt.UTC)),
        "source": pb.MeasurementSource(
            kind=pb.SOURCE_KIND_LAB, organisation="organisations/lab-eindhoven"
        ),
        "source_record_id": record,
    }
    return rpc.MeasurementRow(**(base | overrides))  # type: ignore[arg-type]


def big_batch(
    patients: list[str], total: int, tag: str
) -> tuple[list[rpc.MeasurementRow], set[int]]:
    """``total`` rows over ``patients``; every 100th row is malformed in a rotating way."""
    rows: list[rpc.MeasurementRow] = []
    bad: set[int] = set()
    for i in range(total):
        patient = patients[i % len(patients)]
        r = row(patient, f"{tag}-{i}", value=40.0 + i % 50)
        if i % 100 == 37:
            bad.add(i)
            kind = (i // 100) % 4
            if kind == 0:
                r.code = "NOPE"
            elif kind == 1:
                r.value = 999.0
            elif kind == 2:
                r.unit = "%"
            else:
                r.measure_time.CopyFrom(ts(dt.datetime(2099, 1, 1, tzinfo=dt.UTC)))
        rows.append(r)
    return rows, bad


def chunks(
    rows: list[rpc.MeasurementRow], size: int = 5000
) -> Iterator[rpc.IngestMeasurementsRequest]:
    for start in range(0, len(rows), size):
        yield rpc.IngestMeasurementsRequest(rows=rows[start : start + size])


def ingest(
    stub: rpc_grpc.OutcomesServiceStub, who: tuple[tuple[str, str]], rows: list[rpc.MeasurementRow]
) -> Any:
    """One IngestMeasurements call of one request with ``rows``, as ``who``."""
    return stub.IngestMeasurements(
        iter([rpc.IngestMeasurementsRequest(rows=rows)]), metadata=who, timeout=30
    )

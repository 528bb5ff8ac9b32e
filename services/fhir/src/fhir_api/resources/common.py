"""What every mapping needs: ids, references, times and carenet's own code systems."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from fhir_api.errors import not_found

Json = dict[str, Any]

# Resources that live inside a patient's record have the id ``<patient>.<item>``: carenet's
# ids are lower-case letters, digits and hyphens, so the dot cannot occur inside either.
SEPARATOR = "."


def inner_id(patient_id: str, item_id: str) -> str:
    return f"{patient_id}{SEPARATOR}{item_id}"


def split_inner_id(value: str) -> tuple[str, str]:
    """(patient id, item id) of an inner id; NotFound for anything else."""
    patient_id, sep, item_id = value.partition(SEPARATOR)
    if not sep or not patient_id or not item_id or SEPARATOR in item_id:
        raise not_found()
    return patient_id, item_id


def last_segment(name: str) -> str:
    """``patients/p-1/referrals/r-2`` -> ``r-2``; ``""`` for an empty name."""
    return name.rsplit("/", 1)[-1] if name else ""


def segment(name: str, collection: str) -> str:
    """The id after ``collection/`` in a resource name, ``""`` when it has none."""
    parts = name.split("/")
    for index, part in enumerate(parts[:-1]):
        if part == collection:
            return parts[index + 1]
    return ""


def reference(resource_type: str, resource_id: str, display: str = "") -> Json:
    ref: Json = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        ref["display"] = display
    return ref


def organisation_ref(name: str) -> Json | None:
    """A Reference(Organization) of ``organisations/{id}`` (or a bare id); None when empty."""
    org_id = last_segment(name)
    return reference("Organization", org_id) if org_id else None


def patient_ref(patient_id: str) -> Json:
    return reference("Patient", patient_id)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# The range of a valid Timestamp (0001-01-01 to 9999-12-31, UTC) and of its nanos.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799
_NANOS = 1_000_000_000


def _utc(ts: Timestamp) -> dt.datetime:
    """``ts.ToDatetime(tzinfo=dt.UTC)`` without its range checks and time zone conversion
    for a valid Timestamp (several times faster; an invalid one raises as before)."""
    seconds, nanos = ts.seconds, ts.nanos
    if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < _NANOS):
        return ts.ToDatetime(tzinfo=dt.UTC)
    return _EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)


def instant(ts: Timestamp) -> str | None:
    """A FHIR instant (UTC, with zone) of a set Timestamp; None when unset."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return (
        _utc(ts)
        .isoformat(timespec="milliseconds" if ts.nanos else "seconds")
        .replace("+00:00", "Z")
    )


def date(ts: Timestamp) -> str | None:
    """A FHIR date (Europe-neutral: the UTC calendar day) of a set Timestamp."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return _utc(ts).date().isoformat()


#: The values FHIR forbids as elements (compared with ``in``: by identity, then equality).
EMPTY: tuple[Any, ...] = (None, "", [], {})


def drop_empty(resource: Json) -> Json:
    """``resource`` without keys whose value is None, ``""``, ``[]`` or ``{}`` (FHIR forbids
    empty elements), recursively: a dict or list that is empty once cleaned goes too."""
    return _clean_dict(resource)


# Only dicts and lists are cleaned by a call (a resource has hundreds of leaf values), and
# only a false value is compared with EMPTY: a true one is never empty (0 and False stay).


def _clean_dict(value: dict[str, Any]) -> dict[str, Any]:
    cleaned = {}
    for key, raw in value.items():
        if isinstance(raw, dict):
            item: Any = _clean_dict(raw)
        elif isinstance(raw, list):
            item = _clean_list(raw)
        else:
            item = raw
        if item or item not in EMPTY:
            cleaned[key] = item
    return cleaned


def _clean_list(value: list[Any]) -> list[Any]:
    cleaned = []
    for raw in value:
        if isinstance(raw, dict):
            item: Any = _clean_dict(raw)
        elif isinstance(raw, list):
            item = _clean_list(raw)
        else:
            item = raw
        if item or item not in EMPTY:
            cleaned.append(item)
    return cleaned


def enum_code(value_name: str, prefix: str) -> str:
    """``REFERRAL_STATUS_IN_PROGRESS`` with prefix ``REFERRAL_STATUS_`` -> ``in-progress``."""
    return value_name.removeprefix(prefix).lower().replace("_", "-")


@dataclass(frozen=True)
class Codes:
    """carenet's own code and naming systems under the configured canonical base."""

    base: str

    def system(self, name: str) -> str:
        return f"{self.base}/CodeSystem/{name}"

    def naming(self, name: str) -> str:
        return f"{self.base}/NamingSystem/{name}"

    def coding(self, name: str, code: str, display: str = "") -> Json:
        coding: Json = {"system": self.system(name), "code": code}
        if display:
            coding["display"] = display
        return coding

    def concept(self, name: str, code: str, display: str = "") -> Json:
        return {"coding": [self.coding(name, code, display)]}

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


def instant(ts: Timestamp) -> str | None:
    """A FHIR instant (UTC, with zone) of a set Timestamp; None when unset."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    value = ts.ToDatetime(tzinfo=dt.UTC)
    return value.isoformat(timespec="milliseconds" if ts.nanos else "seconds").replace(
        "+00:00", "Z"
    )


def date(ts: Timestamp) -> str | None:
    """A FHIR date (Europe-neutral: the UTC calendar day) of a set Timestamp."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=dt.UTC).date().isoformat()


#: The values FHIR forbids as elements (compared with ``in``: by identity, then equality).
EMPTY: tuple[Any, ...] = (None, "", [], {})


def drop_empty(resource: Json) -> Json:
    """``resource`` without keys whose value is None, ``""``, ``[]`` or ``{}`` (FHIR forbids
    empty elements), recursively: a dict or list that is empty once cleaned goes too."""
    return _clean_dict(resource)


def _clean(raw: Any) -> Any:
    return _clean_dict(raw) if isinstance(raw, dict) else _clean_list(raw)


def _clean_dict(value: dict[str, Any]) -> dict[str, Any]:
    # only dicts and lists are cleaned by a call: a resource has hundreds of leaf values
    items = ((k, _clean(v) if isinstance(v, (dict, list)) else v) for k, v in value.items())
    return {key: item for key, item in items if item not in EMPTY}


def _clean_list(value: list[Any]) -> list[Any]:
    items = (_clean(v) if isinstance(v, (dict, list)) else v for v in value)
    return [item for item in items if item not in EMPTY]


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

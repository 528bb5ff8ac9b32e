"""The CapabilityStatement: exactly what this API serves (read and search-type, JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_api.resources.common import Json


@dataclass(frozen=True)
class Served:
    """One resource type: whether it can be read by id, its search parameters (name -> FHIR
    type) and the _include values it understands."""

    read: bool
    searchable: bool = True
    search: dict[str, str] = field(default_factory=dict)
    includes: tuple[str, ...] = ()


SERVED: dict[str, Served] = {
    "Patient": Served(read=True, searchable=False),
    "Organization": Served(read=True, searchable=False),
    "CarePlan": Served(
        read=True, search={"patient": "reference", "status": "token"}, includes=("CarePlan:goal",)
    ),
    "Goal": Served(read=True, search={"patient": "reference"}),
    "ServiceRequest": Served(read=True, search={"patient": "reference"}),
    "Task": Served(
        read=True,
        search={"patient": "reference", "status": "token"},
        includes=("Task:focus",),
    ),
    "HealthcareService": Served(read=True, search={"organization": "reference"}),
    "Consent": Served(read=True, search={"patient": "reference"}),
    "AuditEvent": Served(read=False, search={"patient": "reference"}),
    "Observation": Served(read=False, search={"patient": "reference"}),
    "MeasureReport": Served(read=True, search={}),
}
COMMON_SEARCH = {"_count": "number"}
# The R4 SearchParameter each served parameter is (its canonical URL)
SP = "http://hl7.org/fhir/SearchParameter/"
DEFINITIONS = {
    ("CarePlan", "status"): SP + "CarePlan-status",
    ("Task", "patient"): SP + "Task-patient",
    ("Task", "status"): SP + "Task-status",
    ("HealthcareService", "organization"): SP + "HealthcareService-organization",
    ("AuditEvent", "patient"): SP + "AuditEvent-patient",
}


def _definition(resource_type: str, param: str) -> str:
    if param == "patient":
        return DEFINITIONS.get((resource_type, param), SP + "clinical-patient")
    return DEFINITIONS.get((resource_type, param), "")


def capability_statement(base_url: str, software_version: str) -> Json:
    resources = []
    for name, served in SERVED.items():
        interactions = ([{"code": "read"}] if served.read else []) + (
            [{"code": "search-type"}] if served.searchable else []
        )
        resource: Json = {"type": name, "interaction": interactions}
        if served.searchable:
            resource["searchParam"] = [
                {"name": param, "type": kind}
                | ({"definition": _definition(name, param)} if _definition(name, param) else {})
                for param, kind in {**served.search, **COMMON_SEARCH}.items()
            ]
        if served.includes:
            resource["searchInclude"] = list(served.includes)
        resources.append(resource)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-07",
        "publisher": "carenet",
        "kind": "instance",
        "software": {"name": "carenet fhir", "version": software_version},
        "implementation": {"description": "carenet FHIR R4 API", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer access tokens from the care group's Keycloak realm "
                    "with audience carenet-fhir; every access is decided and logged by identity. "
                    "A delegate system acting for one of its people names that person's subject "
                    "in the X-Carenet-On-Behalf-Of header.",
                },
                "resource": resources,
            }
        ],
    }

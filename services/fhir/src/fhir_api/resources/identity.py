"""Organization, Patient, Consent and AuditEvent from identity (shared/fhir.md sections 2, 4
and 5). A Patient carries carenet's internal id only: never a BSN."""

from __future__ import annotations

from carenet.identity.v1 import identity_pb2 as pb
from fhir_api.resources.common import (
    Codes,
    Json,
    drop_empty,
    enum_code,
    inner_id,
    instant,
    last_segment,
    organisation_ref,
    patient_ref,
    segment,
)

AGB = "http://fhir.nl/fhir/NamingSystem/agb-z"
URA = "http://fhir.nl/fhir/NamingSystem/ura"
UZOVI = "http://fhir.nl/fhir/NamingSystem/uzovi"
# No fhir.nl NamingSystem exists for the CBS municipality code; the GBA table 33 OID it is
# drawn from is used as the system.
CBS_MUNICIPALITY = "urn:oid:2.16.840.1.113883.2.4.6.14"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"

CONSENT_STATUS = {
    pb.CONSENT_STATE_ACTIVE: "active",
    # given, but its period has not begun: active, and provision.period says from when
    # (R4 "proposed" means not yet agreed, which a given consent is not)
    pb.CONSENT_STATE_NOT_YET_VALID: "active",
    pb.CONSENT_STATE_EXPIRED: "inactive",
    pb.CONSENT_STATE_WITHDRAWN: "inactive",
}
AUDIT_ACTION = {pb.ACTION_READ: "R", pb.ACTION_CREATE: "C", pb.ACTION_UPDATE: "U"}
AUDIT_SUBTYPE = {pb.ACTION_READ: "read", pb.ACTION_CREATE: "create", pb.ACTION_UPDATE: "update"}


def organization(org: pb.Organisation, codes: Codes) -> Json:
    org_id = last_segment(org.name)
    care_group = last_segment(org.care_group)
    resource: Json = {
        "resourceType": "Organization",
        "id": org_id,
        "meta": {"lastUpdated": instant(org.update_time)},
        "identifier": [
            {"system": codes.naming("organisation-id"), "value": org_id},
            {"system": AGB, "value": org.agb_code},
            {"system": URA, "value": org.ura},
            {"system": UZOVI, "value": org.uzovi},
            {"system": CBS_MUNICIPALITY, "value": org.cbs_municipality_code},
        ],
        "active": True,
        "type": [
            codes.concept(
                "organisation-type",
                enum_code(pb.OrganisationType.Name(org.type), "ORGANISATION_TYPE_"),
            )
        ],
        "name": org.display_name,
        "partOf": organisation_ref(care_group) if care_group and care_group != org_id else None,
    }
    resource["identifier"] = [i for i in resource["identifier"] if i["value"]]
    return drop_empty(resource)


def patient(item: pb.Patient, codes: Codes) -> Json:
    patient_id = segment(item.name, "patients")
    resource: Json = {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": {"lastUpdated": instant(item.update_time)},
        "identifier": [{"system": codes.naming("patient-id"), "value": patient_id}],
        "active": True,
        "managingOrganization": organisation_ref(item.care_group),
    }
    return drop_empty(resource)


def _selector(selector: pb.OrganisationSelector, codes: Codes) -> Json:
    """A Reference to one organisation, or by identifier to every organisation of a kind."""
    if selector.WhichOneof("selector") == "organisation":
        return organisation_ref(selector.organisation) or {}
    kind = enum_code(pb.OrganisationType.Name(selector.category), "ORGANISATION_TYPE_")
    return {
        "type": "Organization",
        "identifier": {"system": codes.system("organisation-type"), "value": kind},
        "display": f"elke organisatie van het type {kind}",
    }


def consent(item: pb.Consent, codes: Codes) -> Json:
    patient_id = segment(item.name, "patients")
    category = enum_code(pb.DataCategory.Name(item.data_category), "DATA_CATEGORY_")
    end = instant(item.withdraw_time) or instant(item.end_time)
    resource: Json = {
        "resourceType": "Consent",
        "id": inner_id(patient_id, last_segment(item.name)),
        "meta": {"lastUpdated": instant(item.update_time)},
        "status": CONSENT_STATUS.get(item.state, "inactive"),
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": ACT_CODE, "code": "IDSCL"}]}],
        "patient": patient_ref(patient_id),
        "dateTime": instant(item.create_time),
        # the record holder: the organisation (or every organisation of a kind) holding the data
        "organization": [_selector(item.record_holder, codes)],
        "policy": [{"uri": f"{codes.base}/policy/consent"}],
        "provision": {
            "type": "permit",
            "period": {"start": instant(item.start_time), "end": end},
            "actor": [
                {
                    "role": {"coding": [{"system": PARTICIPATION, "code": "IRCP"}]},
                    "reference": _selector(item.requester, codes),
                }
            ],
            "class": [{"system": codes.system("data-category"), "code": category}],
            "purpose": [{"system": ACT_REASON, "code": "TREAT"}],
        },
    }
    return drop_empty(resource)


def audit_event(entry: pb.AccessLogEntry, codes: Codes) -> Json:
    """One NEN 7513 access-log entry as an AuditEvent (IHE BALP shape)."""
    permitted = entry.decision == pb.DECISION_PERMIT
    category = enum_code(pb.DataCategory.Name(entry.data_category), "DATA_CATEGORY_")
    users = codes.naming("user")
    agents: list[Json] = [
        {
            "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP"}]},
            "who": {"identifier": {"system": users, "value": entry.user}},
            "role": [{"text": role} for role in entry.roles],
            "requestor": True,
            "network": {"address": entry.access_point, "type": "5"} if entry.access_point else None,
            "purposeOfUse": [
                {
                    "coding": [
                        {"system": ACT_REASON, "code": "ETREAT" if entry.emergency else "TREAT"}
                    ]
                }
            ],
        },
        {
            "type": {"coding": [{"system": ROLE_CLASS, "code": "PROV"}]},
            "who": organisation_ref(entry.organisation),
            "requestor": False,
        },
    ]
    if entry.responsible_user and entry.responsible_user != entry.user:
        # a system acting for a person: the person is the responsible party
        agents.append(
            {
                "type": {"coding": [{"system": PARTICIPATION, "code": "RESP"}]},
                "who": {"identifier": {"system": users, "value": entry.responsible_user}},
                "requestor": False,
            }
        )
    details = [
        ("data-category", category),
        ("basis", enum_code(pb.Basis.Name(entry.basis), "BASIS_") if entry.basis else ""),
        ("purpose", entry.purpose),
        ("emergency-reason", entry.emergency_reason),
        ("sequence", str(entry.sequence)),
        ("entry-hash", entry.entry_hash),
    ]
    resource: Json = {
        "resourceType": "AuditEvent",
        "id": last_segment(entry.name),
        "type": {"system": AUDIT_TYPE, "code": "rest"},
        "subtype": [{"system": RESTFUL, "code": AUDIT_SUBTYPE.get(entry.action, "read")}],
        "action": AUDIT_ACTION.get(entry.action, "E"),
        "recorded": instant(entry.event_time),
        # 0 success; 4 minor failure: the access was refused
        "outcome": "0" if permitted else "4",
        "outcomeDesc": "" if permitted else entry.reason,
        "purposeOfEvent": [
            {"coding": [{"system": ACT_REASON, "code": "ETREAT" if entry.emergency else "TREAT"}]}
        ],
        "agent": agents,
        "source": {
            "observer": {"display": "carenet identity"},
            "type": [{"system": SOURCE_TYPE, "code": "4"}],
        },
        "entity": [
            {
                "what": patient_ref(last_segment(entry.patient)),
                "type": {"system": ENTITY_TYPE, "code": "1"},
                "role": {"system": OBJECT_ROLE, "code": "1"},
            }
            if entry.patient
            else {},
            {
                "type": {"system": ENTITY_TYPE, "code": "2"},
                "role": {"system": OBJECT_ROLE, "code": "4"},
                "name": category,
                "description": entry.event,
                "detail": [
                    {"type": name, "valueString": value} for name, value in details if value
                ],
            },
        ],
    }
    return drop_empty(resource)

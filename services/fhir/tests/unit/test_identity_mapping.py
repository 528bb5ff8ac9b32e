"""Organization, Patient, Consent and AuditEvent over every enum value (no platform)."""

from __future__ import annotations

import pytest
from fhir_api.resources import identity
from fhir_api.resources.common import Codes
from google.protobuf.timestamp_pb2 import Timestamp

from carenet.identity.v1 import identity_pb2 as pb

from ..valuesets import AUDIT_ACTION, AUDIT_OUTCOME, CONSENT_STATE, valid

CODES = Codes("https://carenet.example/fhir")


@pytest.mark.parametrize("kind", list(pb.OrganisationType.values()))
def test_every_organisation_type(kind: int) -> None:
    org = pb.Organisation(
        name="organisations/gp-de-linde",
        display_name="Huisartsenpraktijk De Linde",
        type=kind,  # type: ignore[arg-type]
        agb_code="01234567",
        ura="87654321",
        uzovi="",
        care_group="organisations/cg-zuidoost",
    )
    resource = valid(identity.organization(org, CODES))
    systems = {i["system"]: i["value"] for i in resource["identifier"]}
    assert systems["http://fhir.nl/fhir/NamingSystem/agb-z"] == "01234567"
    assert systems["http://fhir.nl/fhir/NamingSystem/ura"] == "87654321"
    assert "http://fhir.nl/fhir/NamingSystem/uzovi" not in systems  # empty: left out
    assert resource["partOf"] == {"reference": "Organization/cg-zuidoost"}


def test_a_patient_carries_no_bsn() -> None:
    resource = valid(
        identity.patient(
            pb.Patient(name="patients/p-0001", care_group="organisations/cg-zuidoost"), CODES
        )
    )
    assert resource["identifier"] == [
        {"system": "https://carenet.example/fhir/NamingSystem/patient-id", "value": "p-0001"}
    ]


@pytest.mark.parametrize("state", [v for v in pb.ConsentState.values() if v])
def test_every_consent_state_and_data_category(state: int) -> None:
    expected = {
        pb.CONSENT_STATE_ACTIVE: "active",
        pb.CONSENT_STATE_NOT_YET_VALID: "active",  # in force from provision.period.start
        pb.CONSENT_STATE_EXPIRED: "inactive",
        pb.CONSENT_STATE_WITHDRAWN: "inactive",
    }[state]  # type: ignore[index]
    for category in (c for c in pb.DataCategory.values() if c):
        for kind in (k for k in pb.OrganisationType.values() if k):
            item = pb.Consent(
                name="patients/p-0001/consents/c-1",
                record_holder=pb.OrganisationSelector(organisation="organisations/gp-de-linde"),
                data_category=category,
                requester=pb.OrganisationSelector(category=kind),
                start_time=Timestamp(seconds=1_700_000_000),
                withdraw_time=Timestamp(seconds=1_710_000_000)
                if state == pb.CONSENT_STATE_WITHDRAWN
                else Timestamp(),
                state=state,  # type: ignore[arg-type]
            )
            resource = valid(identity.consent(item, CODES))
            assert resource["status"] in CONSENT_STATE
            assert resource["status"] == expected
            assert resource["id"] == "p-0001.c-1"
            assert resource["patient"] == {"reference": "Patient/p-0001"}
            provision = resource["provision"]
            assert provision["class"][0]["code"] == pb.DataCategory.Name(category).removeprefix(
                "DATA_CATEGORY_"
            ).lower().replace("_", "-")
            assert provision["actor"][0]["reference"]["identifier"]["value"] == (
                pb.OrganisationType.Name(kind)
                .removeprefix("ORGANISATION_TYPE_")
                .lower()
                .replace("_", "-")
            )
            if state == pb.CONSENT_STATE_WITHDRAWN:
                assert provision["period"]["end"] == "2024-03-09T16:00:00Z"


@pytest.mark.parametrize("action", list(pb.Action.values()))
def test_every_access_log_action_decision_and_basis(action: int) -> None:
    for decision in pb.Decision.values():
        for basis in pb.Basis.values():
            entry = pb.AccessLogEntry(
                name="accessLogEntries/e-1",
                sequence=12,
                event="careplan.GetCarePlan",
                event_time=Timestamp(seconds=1_700_000_000),
                patient="patients/p-0001",
                user="u-77",
                responsible_user="u-78",
                organisation="organisations/gp-de-linde",
                roles=["gp"],
                data_category=pb.DATA_CATEGORY_CARE_PLAN,
                action=action,  # type: ignore[arg-type]
                decision=decision,
                basis=basis,
                reason="" if decision == pb.DECISION_PERMIT else "NO_CONSENT",
                emergency=basis == pb.BASIS_EMERGENCY,
            )
            event = valid(identity.audit_event(entry, CODES))
            assert event["action"] in AUDIT_ACTION
            assert event["outcome"] in AUDIT_OUTCOME
            assert (event["outcome"] == "0") == (decision == pb.DECISION_PERMIT)
            assert event["entity"][0]["what"] == {"reference": "Patient/p-0001"}
            purpose = event["purposeOfEvent"][0]["coding"][0]["code"]
            assert purpose == ("ETREAT" if basis == pb.BASIS_EMERGENCY else "TREAT")
            # the system acting for a person names the person as responsible
            assert [a["type"]["coding"][0]["code"] for a in event["agent"]] == [
                "IRCP",
                "PROV",
                "RESP",
            ]

"""Every resource the API serves is valid FHIR (R4B models, element-for-element R4 for these
types) and says what the gRPC API says, field by field, on the demo region's data."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from fhir.resources.R4B import get_fhir_model_class

from carenet.careplan.v1 import careplan_service_pb2 as careplan_rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as careplan_grpc
from carenet.identity.v1 import identity_service_pb2 as identity_rpc
from carenet.identity.v1 import identity_service_pb2_grpc as identity_grpc
from carenet.outcomes.v1 import outcomes_service_pb2 as outcomes_rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as outcomes_grpc
from carenet.referral.v1 import referral_pb2 as referral_pb
from carenet.referral.v1 import referral_service_pb2 as referral_rpc
from carenet.referral.v1 import referral_service_pb2_grpc as referral_grpc

from .conftest import FhirApi

KIS = ("carenet-kis", "dr.jansen")
PATIENT_APP = ("carenet-patient-app", "pat.dewit")
INSURER = ("carenet-insurer", "")


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` after checking it against its FHIR model (raises when invalid)."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    for contained in resource.get("contained", []):
        valid(contained)
    return resource


def entries(bundle: dict[str, Any], mode: str = "match") -> list[dict[str, Any]]:
    valid(bundle)
    assert bundle["type"] == "searchset"
    return [valid(e["resource"]) for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def meta(md: tuple[str, str], fhir: FhirApi) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {fhir.token(*md)}"),)


def test_the_capability_statement_lists_exactly_what_is_served(fhir: FhirApi) -> None:
    statement = valid(fhir.ok("metadata", fhir.token(*KIS)))
    assert statement["fhirVersion"] == "4.0.1"
    served = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(served) == {
        "Patient", "Organization", "CarePlan", "Goal", "ServiceRequest", "Task",
        "HealthcareService", "Consent", "AuditEvent", "Observation", "MeasureReport",
    }  # fmt: skip
    token = fhir.token(*KIS)
    for name, resource in served.items():
        # each interaction the statement lists is served, each it omits is not
        codes = {i["code"] for i in resource["interaction"]}
        searched = (
            fhir.get(name, token, patient="p-0001")
            if "patient" in str(resource)
            else fhir.get(name, token)
        )
        read = fhir.get(f"{name}/p-0001.x-1", token)
        for answer, listed in ((searched, "search-type" in codes), (read, "read" in codes)):
            served_here = answer.json().get("issue", [{}])[0].get("code") != "not-supported"
            assert served_here == listed, (name, answer.status_code, answer.text)
    assert fhir.get("Practitioner", token).json()["issue"][0]["code"] == "not-supported"


def test_care_plan_and_goals_match_get_care_plan(fhir: FhirApi) -> None:
    stub = careplan_grpc.CarePlanServiceStub(fhir.channel("careplan"))
    plan = stub.GetCarePlan(
        careplan_rpc.GetCarePlanRequest(name="patients/p-0001/carePlan"), metadata=meta(KIS, fhir)
    )
    bundle = fhir.ok(
        "CarePlan", fhir.token(*KIS), patient="Patient/p-0001", _include="CarePlan:goal"
    )
    [care_plan] = entries(bundle)
    goals = entries(bundle, "include")
    assert care_plan["id"] == "p-0001"
    assert care_plan["subject"] == {"reference": "Patient/p-0001"}
    assert care_plan["meta"]["versionId"] == str(plan.version)
    assert care_plan["status"] == {2: "active", 1: "draft"}.get(plan.status, care_plan["status"])
    assert care_plan.get("description", "") == "\n".join(plan.what_matters)
    assert [g["reference"] for g in care_plan.get("goal", [])] == [
        f"Goal/p-0001.{g.id}" for g in plan.goals
    ]
    assert {g["id"] for g in goals} == {f"p-0001.{g.id}" for g in plan.goals}
    by_id = {g["id"]: g for g in goals}
    for item in plan.goals:
        goal = by_id[f"p-0001.{item.id}"]
        assert goal["description"]["text"] == item.description
        assert goal["subject"] == {"reference": "Patient/p-0001"}
        # the same goal read by its id
        assert valid(fhir.ok(f"Goal/p-0001.{item.id}", fhir.token(*KIS))) == goal
    # the read by id is the search's match; the bare and the typed patient agree
    assert valid(fhir.ok("CarePlan/p-0001", fhir.token(*KIS))) == care_plan
    assert entries(fhir.ok("CarePlan", fhir.token(*KIS), patient="p-0001")) == [care_plan]
    activity_refs = [
        a["reference"]["reference"] for a in care_plan.get("activity", []) if "reference" in a
    ]
    assert activity_refs == [
        f"ServiceRequest/p-0001.{a.referral.rsplit('/', 1)[-1]}" for a in plan.actions if a.referral
    ]


def test_referrals_are_service_request_and_task(fhir: FhirApi) -> None:
    stub = referral_grpc.ReferralServiceStub(fhir.channel("referral"))
    listed = stub.ListReferrals(
        referral_rpc.ListReferralsRequest(parent="patients/p-0001"), metadata=meta(KIS, fhir)
    )
    assert listed.referrals, "the demo data holds a referral of p-0001"
    bundle = fhir.ok("Task", fhir.token(*KIS), patient="p-0001", _include="Task:focus")
    tasks = entries(bundle)
    requests_ = {r["id"]: r for r in entries(bundle, "include")}
    assert [t["id"] for t in tasks] == [
        "p-0001." + r.name.rsplit("/", 1)[-1] for r in listed.referrals
    ]
    names = {1: "draft", 2: "requested", 3: "accepted", 4: "rejected", 5: "cancelled",
             6: "in-progress", 7: "on-hold", 8: "failed", 9: "completed"}  # fmt: skip
    for task, ref in zip(tasks, listed.referrals, strict=True):
        assert task["status"] == names[ref.status]
        assert task["intent"] == "order"
        assert task["code"]["coding"][0]["code"] == "fulfill"
        assert task["focus"] == {"reference": f"ServiceRequest/{task['id']}"}
        assert task["for"] == {"reference": "Patient/p-0001"}
        assert (
            task["requester"]["reference"]
            == "Organization/" + ref.referrer_organisation.rsplit("/", 1)[-1]
        )
        assert (
            task["owner"]["reference"]
            == "Organization/" + ref.target_organisation.rsplit("/", 1)[-1]
        )
        request = requests_[task["id"]]
        assert request["performer"] == [
            {"reference": "HealthcareService/" + ref.offer.rsplit("/", 1)[-1]}
        ]
        assert request["reasonCode"] == [{"text": ref.reason}]
        assert valid(fhir.ok(f"ServiceRequest/{task['id']}", fhir.token(*KIS))) == request
        assert valid(fhir.ok(f"Task/{task['id']}", fhir.token(*KIS))) == task
    status = names[listed.referrals[0].status]
    filtered = entries(fhir.ok("Task", fhir.token(*KIS), patient="p-0001", status=status))
    assert filtered and all(t["status"] == status for t in filtered)


def test_offers_are_healthcare_services_and_organisations_organizations(fhir: FhirApi) -> None:
    stub = referral_grpc.ReferralServiceStub(fhir.channel("referral"))
    offers = stub.ListOffers(
        referral_rpc.ListOffersRequest(page_size=5, state=referral_pb.OFFER_STATE_LISTED),
        metadata=meta(KIS, fhir),
    ).offers
    bundle = fhir.ok("HealthcareService", fhir.token(*KIS), _count=5)
    services = entries(bundle)
    assert [s["id"] for s in services] == [o.name.rsplit("/", 1)[-1] for o in offers]
    for service, offer in zip(services, offers, strict=True):
        assert service["name"] == offer.display_name
        assert service["active"] is True
        provider = offer.owner_organisation.rsplit("/", 1)[-1]
        assert service["providedBy"] == {"reference": f"Organization/{provider}"}
        organization = valid(fhir.ok(f"Organization/{provider}", fhir.token(*KIS)))
        org = identity_grpc.IdentityServiceStub(fhir.channel("identity")).GetOrganisation(
            identity_rpc.GetOrganisationRequest(name=f"organisations/{provider}"),
            metadata=meta(KIS, fhir),
        )
        assert organization["name"] == org.display_name
        systems = {i["system"]: i["value"] for i in organization["identifier"]}
        if org.agb_code:
            assert systems["http://fhir.nl/fhir/NamingSystem/agb-z"] == org.agb_code


def test_a_patient_reads_their_consents_and_who_looked(fhir: FhirApi) -> None:
    token = fhir.token(*PATIENT_APP)
    stub = identity_grpc.IdentityServiceStub(fhir.channel("identity"))
    consents = stub.ListConsents(
        identity_rpc.ListConsentsRequest(parent="patients/p-0001"), metadata=meta(PATIENT_APP, fhir)
    ).consents
    found = entries(fhir.ok("Consent", token, patient="p-0001"))
    assert [c["id"] for c in found] == ["p-0001." + c.name.rsplit("/", 1)[-1] for c in consents]
    for resource in found:
        assert resource["patient"] == {"reference": "Patient/p-0001"}
        assert resource["provision"]["type"] == "permit"
        assert valid(fhir.ok(f"Consent/{resource['id']}", token)) == resource
    events = entries(fhir.ok("AuditEvent", token, patient="p-0001", _count=50))
    assert events, "the patient's own reads are in their access log"
    for event in events:
        patients = [e["what"]["reference"] for e in event["entity"] if "what" in e]
        assert patients == ["Patient/p-0001"]
        assert event["agent"][0]["requestor"] is True
    # no BSN anywhere in what the patient's app receives
    patient = valid(fhir.ok("Patient/p-0001", token))
    assert [i["system"] for i in patient["identifier"]] == [
        "https://carenet.example/fhir/NamingSystem/patient-id"
    ]
    assert "bsn" not in str(patient).lower()


def test_measurements_are_observations(fhir: FhirApi) -> None:
    stub = outcomes_grpc.OutcomesServiceStub(fhir.channel("outcomes"))
    listed = stub.ListMeasurements(
        outcomes_rpc.ListMeasurementsRequest(parent="patients/p-0001", page_size=20),
        metadata=meta(KIS, fhir),
    ).measurements
    found = entries(fhir.ok("Observation", fhir.token(*KIS), patient="p-0001", _count=20))
    assert [o["id"] for o in found] == ["p-0001." + m.name.rsplit("/", 1)[-1] for m in listed]
    for observation, measurement in zip(found, listed, strict=True):
        assert observation["valueQuantity"]["value"] == pytest.approx(measurement.value)
        assert observation["valueQuantity"]["code"] == measurement.unit
        assert observation["subject"] == {"reference": "Patient/p-0001"}


def test_reports_are_measure_reports_with_masked_cells(fhir: FhirApi) -> None:
    token = fhir.token(*INSURER)
    stub = outcomes_grpc.OutcomesServiceStub(fhir.channel("outcomes"))
    listed = stub.ListReports(
        outcomes_rpc.ListReportsRequest(), metadata=meta(INSURER, fhir)
    ).reports
    assert listed, "the demo data holds an insurer's report"
    report = stub.GetReport(
        outcomes_rpc.GetReportRequest(name=listed[0].name), metadata=meta(INSURER, fhir)
    )
    resource = valid(fhir.ok(f"MeasureReport/{report.name.rsplit('/', 1)[-1]}", token))
    assert resource["type"] == "summary"
    indicators = sorted({c.indicator for c in report.cells})
    assert [g["code"]["coding"][0]["code"] for g in resource["group"]] == indicators
    populations = [
        p
        for g in resource["group"]
        for s in g.get("stratifier", [])
        for stratum in s["stratum"]
        for p in stratum["population"]
    ]
    suppressed = sum(1 for c in report.cells if c.suppression not in (0, 1))
    masked = [p for p in populations if "_count" in p]
    assert all("count" not in p for p in masked)
    # three populations a cell: a masked population for every number a suppressed cell hides
    total_suppressed = sum(
        1
        for c in report.cells
        if c.suppression not in (0, 1) and (c.practice or c.age_band or c.sex or c.band)
    )
    assert len(masked) == 3 * total_suppressed
    assert suppressed >= total_suppressed


def test_every_listed_search_parameter_is_taken_and_no_other(fhir: FhirApi) -> None:
    """The CapabilityStatement's search parameters and includes are exactly the ones a
    search takes: each listed one is accepted, with its R4 SearchParameter as definition."""
    token = fhir.token(*KIS)
    statement = valid(fhir.ok("metadata", token))
    values = {"patient": "Patient/p-0001", "status": "active", "_count": "2",
              "organization": "Organization/gli-beweegfit"}  # fmt: skip
    for resource in statement["rest"][0]["resource"]:
        name = resource["type"]
        token = fhir.token(*{"MeasureReport": INSURER, "AuditEvent": PATIENT_APP}.get(name, KIS))
        params = {p["name"]: p for p in resource.get("searchParam", [])}
        base = {"patient": "p-0001"} if "patient" in params else {}
        for param, listed in params.items():
            if param != "_count":
                assert listed["definition"].startswith("http://hl7.org/fhir/SearchParameter/")
            value = values[param]
            if (name, param) == ("Task", "status"):
                value = "requested"
            answer = fhir.get(name, token, **(base | {param: value}))
            assert answer.status_code == 200, (name, param, answer.text)
        for include in resource.get("searchInclude", []):
            answer = fhir.get(name, token, **(base | {"_include": include}))
            assert answer.status_code == 200, (name, include, answer.text)
        if resource["interaction"][-1]["code"] == "search-type":
            refused = fhir.get(name, token, **(base | {"subject": "Patient/p-0001"}))
            assert refused.status_code == 400, (name, refused.text)


def test_http_conventions_of_fhir(fhir: FhirApi) -> None:
    """What a FHIR client expects of the HTTP exchange (R4 http.html and search.html)."""
    token = fhir.token(*KIS)
    # a read says its version and time in ETag and Last-Modified, and takes _format
    response = fhir.get("CarePlan/p-0001", token, _format="json")
    assert response.status_code == 200, response.text
    plan = response.json()
    assert response.headers["ETag"] == f'W/"{plan["meta"]["versionId"]}"'
    assert response.headers["Last-Modified"].endswith(" GMT")
    assert fhir.get("CarePlan/p-0001", token, _format="application/fhir+json").json() == plan
    # another format is not acceptable: 406, by _format or by Accept
    for answer in (
        fhir.get("CarePlan/p-0001", token, _format="xml"),
        fhir.get("CarePlan", token, patient="p-0001", _format="application/fhir+xml"),
        requests.get(
            f"{fhir.base}/CarePlan/p-0001",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+xml"},
            timeout=30,
        ),
    ):
        assert answer.status_code == 406, answer.text
        assert valid(answer.json())["issue"][0]["code"] == "not-supported"
    accepted = requests.get(
        f"{fhir.base}/CarePlan/p-0001",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
        timeout=30,
    )
    assert accepted.status_code == 200
    probe = requests.get(
        f"{fhir.base.split('/fhir/')[0]}/healthz", headers={"Accept": "text/plain"}, timeout=30
    )
    assert probe.status_code == 200
    # a token may name its system; a CarePlan status may be any of several (OR)
    task_status = "http://hl7.org/fhir/task-status|requested"
    assert entries(fhir.ok("Task", token, patient="p-0001", status=task_status)) == entries(
        fhir.ok("Task", token, patient="p-0001", status="requested")
    )
    assert entries(fhir.ok("CarePlan", token, patient="p-0001", status="draft,active")) == [plan]
    assert entries(fhir.ok("CarePlan", token, patient="p-0001", status="draft,revoked")) == []
    for bad in ("http://hl7.org/fhir/request-status|requested", "requested,completed", "|"):
        assert fhir.get("Task", token, patient="p-0001", status=bad).status_code == 400, bad

"""Attackers and errors through HTTP: who is refused with 401, the refusals the services give
(another patient's data, another insurer's report) with the same code as over gRPC, a
delegate system acting for a person, and garbage paths and parameters (never a 500, never
a stack trace, never another patient's id)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import quote

import grpc
import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carenet.careplan.v1 import careplan_service_pb2 as careplan_rpc
from carenet.careplan.v1 import careplan_service_pb2_grpc as careplan_grpc
from carenet.outcomes.v1 import outcomes_pb2 as outcomes_pb
from carenet.outcomes.v1 import outcomes_service_pb2 as outcomes_rpc
from carenet.outcomes.v1 import outcomes_service_pb2_grpc as outcomes_grpc
from testkit.rpc import failure

from .conftest import FhirApi
from .valuesets import valid

KIS_USER = ("carenet-kis", "dr.jansen")
PATIENT_APP = ("carenet-patient-app", "pat.dewit")  # patient p-0001
INSURER = ("carenet-insurer", "")
ADMIN = ("carenet-kis", "admin.zuidoost")
HTTP_OF_GRPC = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,  # the token passed this API's check; a service refused it
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
}
OTHER_PATIENTS = ("p-0002", "p-0003")


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def _outcome(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    valid(body)
    assert body["resourceType"] == "OperationOutcome"
    assert "Traceback" not in response.text
    return body


def _reason(body: dict[str, Any]) -> str:
    return str(body["issue"][0].get("details", {}).get("coding", [{}])[0].get("code", ""))


def _md(fhir: FhirApi, who: tuple[str, str]) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {fhir.token(*who)}"),)


# ------------------------------------------------------------------ 401


def test_no_or_a_malformed_token_is_401(fhir: FhirApi) -> None:
    for headers in ({}, {"Authorization": "Basic ZGVtbzpkZW1v"}, {"Authorization": "Bearer "}):
        response = requests.get(f"{fhir.base}/CarePlan/p-0001", headers=headers, timeout=30)
        body = _outcome(response, 401)
        assert body["issue"][0]["code"] == "login"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    _outcome(fhir.get("CarePlan/p-0001", "not.a.jwt"), 401)


def test_a_token_signed_with_another_key_under_the_issuers_kid_is_401(fhir: FhirApi) -> None:
    real = fhir.token(*KIS_USER)
    own_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(real), own_key, algorithm="RS256", headers={"kid": _kid(real)})
    _outcome(fhir.get("CarePlan/p-0001", forged), 401)
    # the same claims, unsigned (alg none) or with the signature cut off
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "kid": _kid(real)}).encode()
    ).rstrip(b"=")
    unsigned = header.decode() + "." + real.split(".")[1] + "."
    _outcome(fhir.get("CarePlan/p-0001", unsigned), 401)
    _outcome(fhir.get("CarePlan/p-0001", real.rsplit(".", 1)[0] + ".AAAA"), 401)
    assert fhir.get("CarePlan/p-0001", real).status_code == 200  # the real one passes


def test_an_expired_token_is_401(fhir: FhirApi) -> None:
    real = fhir.token(*KIS_USER)
    claims = _claims(real) | {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
    key = jwt.PyJWK(fhir.platform.idp.private_key("sig"))
    expired = jwt.encode(claims, key.key, algorithm="RS256", headers={"kid": _kid(real)})
    _outcome(fhir.get("CarePlan/p-0001", expired), 401)


def test_a_token_not_meant_for_this_api_is_401(fhir: FhirApi) -> None:
    # carenet-municipality's tokens name identity and referral, not carenet-fhir
    token = fhir.platform.idp.client_token("carenet-municipality")
    assert "carenet-fhir" not in _claims(token)["aud"]
    _outcome(fhir.get("HealthcareService", token), 401)


def test_a_token_a_service_refuses_is_401_invalid_token(fhir: FhirApi) -> None:
    """The patient app's token names carenet-fhir but not outcomes: this API accepts it,
    outcomes refuses it (UNAUTHENTICATED WRONG_AUDIENCE), and the answer is that refusal as
    RFC 6750 and the issue say: 401 with ``error="invalid_token"``, issue code login."""
    token = fhir.token(*PATIENT_APP)
    claims = _claims(token)
    assert "carenet-fhir" in claims["aud"] and "carenet-outcomes" not in claims["aud"]
    stub = outcomes_grpc.OutcomesServiceStub(fhir.channel("outcomes"))
    with pytest.raises(grpc.RpcError) as raised:
        stub.ListMeasurements(
            outcomes_rpc.ListMeasurementsRequest(parent="patients/p-0001"),
            metadata=_md(fhir, PATIENT_APP),
        )
    grpc_failure = failure(raised.value)
    assert (grpc_failure.code, grpc_failure.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "WRONG_AUDIENCE",
    )
    # the same token passes this API's own check: the patient's care plan is read
    assert fhir.get("CarePlan/p-0001", token).status_code == 200
    for path, params in (("Observation", {"patient": "p-0001"}), ("MeasureReport", {})):
        response = fhir.get(path, token, **params)
        body = _outcome(response, 401)
        assert body["issue"][0]["code"] == "login"
        assert _reason(body) == "WRONG_AUDIENCE"
        assert (
            response.headers["WWW-Authenticate"] == 'Bearer realm="carenet", error="invalid_token"'
        )
        assert "p-0001" not in response.text
    # no token at all: a challenge without an error code (RFC 6750 section 3.1)
    response = fhir.get("Observation", None, patient="p-0001")
    _outcome(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="carenet"'


def test_the_capability_statement_needs_no_token(fhir: FhirApi) -> None:
    response = fhir.get("metadata", None)
    assert response.status_code == 200
    assert valid(response.json())["resourceType"] == "CapabilityStatement"


# ------------------------------------------------------------------ the services' refusals


def test_another_patients_data_is_refused_as_over_grpc(fhir: FhirApi) -> None:
    """The patient app (p-0001) asks for another patient's care plan, referrals, consents,
    access log and record: the same refusal as the services give, naming nobody."""
    stub = careplan_grpc.CarePlanServiceStub(fhir.channel("careplan"))
    token = fhir.token(*PATIENT_APP)
    for other in OTHER_PATIENTS:
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetCarePlan(
                careplan_rpc.GetCarePlanRequest(name=f"patients/{other}/carePlan"),
                metadata=_md(fhir, PATIENT_APP),
            )
        grpc_failure = failure(raised.value)
        status = HTTP_OF_GRPC[grpc_failure.code.name]
        for path, params in (
            (f"CarePlan/{other}", {}),
            ("CarePlan", {"patient": other}),
            ("CarePlan", {"patient": f"Patient/{other}"}),
            ("Goal", {"patient": other}),
            (f"Goal/{other}.g-1", {}),
        ):
            response = fhir.get(path, token, **params)
            body = _outcome(response, status)
            assert _reason(body) == grpc_failure.reason
            assert other not in response.text
        for path, params in (
            ("Task", {"patient": other}),
            ("ServiceRequest", {"patient": other}),
            ("Consent", {"patient": other}),
            ("AuditEvent", {"patient": other}),
            (f"Patient/{other}", {}),
            (f"Consent/{other}.c-1", {}),
            (f"Task/{other}.r-1", {}),
        ):
            response = fhir.get(path, token, **params)
            assert response.status_code in (403, 404), (path, response.text)
            _outcome(response, response.status_code)
            assert other not in response.text


def test_the_patient_app_reads_the_patients_own_data(fhir: FhirApi) -> None:
    token = fhir.token(*PATIENT_APP)
    assert valid(fhir.ok("CarePlan/p-0001", token))["subject"]["reference"] == "Patient/p-0001"
    assert valid(fhir.ok("Patient/p-0001", token))["id"] == "p-0001"
    for kind in ("Task", "ServiceRequest", "Consent", "AuditEvent", "Goal"):
        bundle = valid(fhir.ok(kind, token, patient="p-0001"))
        text = json.dumps(bundle)
        assert all(other not in text for other in OTHER_PATIENTS), kind
    # the patient app's tokens do not name outcomes: no reports (outcomes refuses the token)
    assert fhir.get("MeasureReport", token).status_code == 401


def test_the_insurer_reads_only_reports_of_its_own_contracts(fhir: FhirApi) -> None:
    stub = outcomes_grpc.OutcomesServiceStub(fhir.channel("outcomes"))
    # a care-group report without a contract, by the care group's administrator, stratified
    # by practice, age band and sex
    start, end = Timestamp(seconds=1_704_067_200), Timestamp(seconds=1_735_603_200)
    own = stub.ComputeIndicators(
        outcomes_rpc.ComputeIndicatorsRequest(
            period_start=start,
            period_end=end,
            stratifiers=[
                outcomes_pb.STRATIFIER_PRACTICE,
                outcomes_pb.STRATIFIER_AGE_BAND,
                outcomes_pb.STRATIFIER_SEX,
            ],
        ),
        metadata=_md(fhir, ADMIN),
    )
    report_id = own.name.rsplit("/", 1)[-1]
    # the administrator sees it, with strata by practice, age band and sex, valid FHIR
    resource = valid(fhir.ok(f"MeasureReport/{report_id}", fhir.token(*ADMIN)))
    kinds = {
        tuple(c["coding"][0]["code"] for c in s["code"])
        for g in resource["group"]
        for s in g.get("stratifier", [])
    }
    assert {("practice",), ("age-band",), ("sex",), ("practice", "age-band", "sex")} <= kinds
    # the insurer does not: the same answer as over gRPC
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetReport(outcomes_rpc.GetReportRequest(name=own.name), metadata=_md(fhir, INSURER))
    grpc_failure = failure(raised.value)
    body = _outcome(
        fhir.get(f"MeasureReport/{report_id}", fhir.token(*INSURER)),
        HTTP_OF_GRPC[grpc_failure.code.name],
    )
    assert _reason(body) == grpc_failure.reason
    # its search lists exactly the reports of its contracts
    listed = stub.ListReports(outcomes_rpc.ListReportsRequest(), metadata=_md(fhir, INSURER))
    contracts = stub.ListContracts(
        outcomes_rpc.ListContractsRequest(), metadata=_md(fhir, INSURER)
    ).contracts
    assert {r.contract for r in listed.reports} <= {c.name for c in contracts}
    found = valid(fhir.ok("MeasureReport", fhir.token(*INSURER), _count=100))
    ids = [e["resource"]["id"] for e in found.get("entry", [])]
    assert ids == [r.name.rsplit("/", 1)[-1] for r in listed.reports]
    assert ids and report_id not in ids
    # and no patient data: careplan and identity refuse the insurer's token (its audience)
    assert fhir.get("CarePlan/p-0001", fhir.token(*INSURER)).status_code == 401
    assert fhir.get("Patient/p-0001", fhir.token(*INSURER)).status_code == 401


def test_errors_have_the_status_of_their_grpc_code(fhir: FhirApi) -> None:
    token = fhir.token(*KIS_USER)
    for params, reason in (
        ({"patient": "p-0001", "_count": "zero"}, "INVALID_COUNT"),
        ({"patient": "p-0001", "_count": "0"}, "INVALID_COUNT"),
        ({"patient": "Practitioner/x"}, "INVALID_REFERENCE"),
        ({"patient": "p-0001", "colour": "red"}, "UNKNOWN_SEARCH_PARAMETER"),
        ({"patient": "p-0001", "status": "ready"}, "INVALID_STATUS"),
        ({"patient": "p-0001", "_page_token": "garbage"}, ""),
    ):
        body = _outcome(fhir.get("Task", token, **params), 400)
        assert body["issue"][0]["code"] == "invalid"
        if reason:
            assert _reason(body) == reason
    _outcome(fhir.get("Consent", token), 400)  # the patient is required
    body = _outcome(fhir.get("MeasureReport/nx-report", fhir.token(*INSURER)), 404)
    assert body["issue"][0]["code"] == "not-found"
    _outcome(fhir.get("Goal/p-0001.no-such-goal", token), 404)
    body = _outcome(fhir.get("CarePlan/p-0001", fhir.token(*INSURER)), 401)
    assert body["issue"][0]["code"] == "login"
    body = _outcome(fhir.get("CarePlan/p-0002", fhir.token(*PATIENT_APP)), 403)
    assert body["issue"][0]["code"] == "forbidden"
    _outcome(fhir.get("Practitioner/x", token), 404)
    response = requests.post(
        f"{fhir.base}/CarePlan", headers={"Authorization": f"Bearer {token}"}, json={}, timeout=30
    )
    _outcome(response, 405)


# ------------------------------------------------------------------ a system for a person


def test_a_delegate_system_acts_for_a_person_and_the_services_decide(fhir: FhirApi) -> None:
    system = fhir.token("carenet-kis")  # the KIS's own service account (delegate)
    person = _claims(fhir.token(*KIS_USER))["sub"]
    other_practice = _claims(fhir.token("carenet-kis", "dr.devries"))["sub"]
    stub = careplan_grpc.CarePlanServiceStub(fhir.channel("careplan"))

    def grpc_reason(metadata: tuple[tuple[str, str], ...]) -> tuple[int, str]:
        try:
            stub.GetCarePlan(
                careplan_rpc.GetCarePlanRequest(name="patients/p-0001/carePlan"), metadata=metadata
            )
        except grpc.RpcError as error:
            f = failure(error)
            return HTTP_OF_GRPC[f.code.name], f.reason
        return 200, ""

    def http(token: str, on_behalf: str | None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"}
        if on_behalf is not None:
            headers["X-Carenet-On-Behalf-Of"] = on_behalf
        return requests.get(f"{fhir.base}/CarePlan/p-0001", headers=headers, timeout=30)

    for token, on_behalf in (
        (system, person),  # the KIS for its own GP: allowed
        (system, other_practice),  # for a person of another organisation: refused
        (system, None),  # for nobody
        (fhir.token(*KIS_USER), other_practice),  # a person's own token may not name one
    ):
        md: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),)
        if on_behalf is not None:
            md += (("x-carenet-on-behalf-of", on_behalf),)
        status, reason = grpc_reason(md)
        response = http(token, on_behalf)
        assert response.status_code == status, (on_behalf, response.text)
        if status != 200:
            assert _reason(response.json()) == reason
    assert http(system, person).status_code == 200
    # the access log names the person as responsible for the system's read
    events = valid(fhir.ok("AuditEvent", fhir.token(*PATIENT_APP), patient="p-0001", _count=100))
    responsible = [
        a["who"]["identifier"]["value"]
        for e in events.get("entry", [])
        for a in e["resource"]["agent"]
        if a["type"]["coding"][0]["code"] == "RESP"
    ]
    assert person in responsible
    # a malformed header, or one given twice, is refused before any service is asked
    for malformed in ("two words", f"{person},{person}", f"{person}, dr.devries"):
        body = _outcome(http(system, malformed), 400)
        assert _reason(body) == "INVALID_ON_BEHALF_OF"


# ------------------------------------------------------------------ garbage

TYPES = [
    "Patient", "Organization", "CarePlan", "Goal", "ServiceRequest", "Task",
    "HealthcareService", "Consent", "AuditEvent", "Observation", "MeasureReport", "Practitioner",
]  # fmt: skip
PARAMS = ["patient", "status", "_count", "_include", "_page_token", "_format", "organization",
          "_id", "subject", ""]  # fmt: skip
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40
) | st.sampled_from(
    ["p-0002", "Patient/p-0003", "p-0001.x", "..", "%00", "-1", "99999999999999999999",
     "Patient/", "http://x/Patient/p-0002", "p-0002.g-1", "CarePlan:goal", "Task:focus"]
)  # fmt: skip


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(TYPES),
    resource_id=st.none() | TEXT,
    params=st.lists(st.tuples(st.sampled_from(PARAMS) | TEXT, TEXT), max_size=4),
    who=st.sampled_from([PATIENT_APP, KIS_USER, INSURER]),
)
def test_garbage_is_never_a_500_nor_a_trace_nor_another_patient(
    fhir: FhirApi,
    kind: str,
    resource_id: str | None,
    params: list[tuple[str, str]],
    who: tuple[str, str],
) -> None:
    path = kind if resource_id is None else f"{kind}/{quote(resource_id, safe='')}"
    response = requests.get(
        f"{fhir.base}/{path}",
        params=params,
        headers={"Authorization": f"Bearer {fhir.token(*who)}"},
        timeout=30,
    )
    assert response.status_code < 500, (path, params, response.text)
    assert "Traceback" not in response.text and 'File "' not in response.text
    if response.status_code >= 400:
        _outcome(response, response.status_code)
        if who == PATIENT_APP:
            assert not any(other in response.text for other in OTHER_PATIENTS), response.text

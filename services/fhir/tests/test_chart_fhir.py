"""The umbrella chart's FHIR API (charts/carenet/templates/fhir.yaml), rendered with
``fhir.enabled`` on over the default and the production profile, and validated against the
Kubernetes schemas: Deployment with HTTP probes, Service, NetworkPolicy that admits the
gateway and reaches only DNS, the issuer, the four services and the collector, the services
admitting the FHIR pods, the HTTPRoute on /fhir/R4, no secret of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.chart import component, one, production, render
from testkit.idp import repo_root

REPO = repo_root(Path(__file__))
SERVICES = ("identity", "referral", "careplan", "outcomes")
FHIR = {
    "fhir": {
        "enabled": True,
        "publicUrl": "https://fhir.example.nl/fhir/R4",
        "hostname": "fhir.example.nl",
    }
}


@pytest.fixture(scope="module", params=["default", "production"])
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    values = FHIR if request.param == "default" else production(FHIR)
    return render(values)


def test_the_deployment_probes_over_http_and_names_the_services(
    objects: list[dict[str, Any]],
) -> None:
    deployment = one(objects, "Deployment", "carenet-fhir")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8001, "protocol": "TCP"}]
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in container["env"]}
    assert env["FHIR_PUBLIC_URL"]["value"] == "https://fhir.example.nl/fhir/R4"
    assert env["FHIR_OIDC_AUDIENCE"]["value"] == "carenet-fhir"
    assert env["FHIR_PORT"]["value"] == "8001"
    for svc in SERVICES:
        assert env[f"FHIR_{svc.upper()}_TARGET"]["value"] == (
            f"dns:///carenet-{svc}.carenet.svc.cluster.local:50051"
        )
    # bearer-only: no secret of its own
    assert not [e for e in container["env"] if "valueFrom" in e]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    service = one(objects, "Service", "carenet-fhir")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_api_reaches_only_dns_the_issuer_the_services_and_the_collector(
    objects: list[dict[str, Any]],
) -> None:
    policy = one(objects, "NetworkPolicy", "carenet-fhir")["spec"]
    reached = [component(peer) for rule in policy["egress"] for peer in rule["to"]]
    assert set(SERVICES) <= set(reached)
    for rule in policy.get("ingress", []):
        assert rule["ports"] == [{"port": 8001, "protocol": "TCP"}]
    for svc in SERVICES:
        admitted = [
            component(peer)
            for rule in one(objects, "NetworkPolicy", f"carenet-{svc}")["spec"]["ingress"]
            for peer in rule["from"]
        ]
        assert "fhir" in admitted, svc


def test_production_routes_the_fhir_base_to_the_api() -> None:
    objects = render(production(FHIR))
    route = one(objects, "HTTPRoute", "carenet-fhir")
    assert route["spec"]["hostnames"] == ["fhir.example.nl"]
    # attached to the Gateway's listener for the API's own host name, where it is accepted
    [parent] = route["spec"]["parentRefs"]
    gateway = one(objects, "Gateway", parent["name"])
    [listener] = [x for x in gateway["spec"]["listeners"] if x["name"] == parent["sectionName"]]
    assert listener["hostname"] == "fhir.example.nl"
    [rule] = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/fhir/R4"}}]
    assert rule["backendRefs"] == [{"name": "carenet-fhir", "port": 80}]
    assert one(objects, "Certificate", "carenet-fhir")["spec"]["usages"] == ["client auth"]
    container = one(objects, "Deployment", "carenet-fhir")["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    if "FHIR_OIDC_JWKS_URL" in env:  # an issuer outside the cluster: keys fetched inside
        assert env["FHIR_OIDC_JWKS_URL"].endswith("/protocol/openid-connect/certs")


def test_without_fhir_nothing_of_it_renders_and_services_admit_no_fhir_pods() -> None:
    objects = render({"fhir": {"enabled": False}})
    assert not [o for o in objects if o["metadata"]["name"] == "carenet-fhir"]
    for svc in SERVICES:
        admitted = [
            component(peer)
            for rule in one(objects, "NetworkPolicy", f"carenet-{svc}")["spec"]["ingress"]
            for peer in rule["from"]
        ]
        assert "fhir" not in admitted


def test_the_rendered_objects_are_valid_kubernetes(tmp_path: Path) -> None:
    objects = [o for o in render(production(FHIR)) if o["metadata"]["name"] == "carenet-fhir"]
    builtin = [o for o in objects if o["kind"] not in ("HTTPRoute", "Certificate")]
    assert {o["kind"] for o in builtin} >= {"Deployment", "Service", "NetworkPolicy"}
    target = tmp_path / "fhir.yaml"
    target.write_text(yaml.safe_dump_all(builtin))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "kubernetes-validate"),
            "-k",
            "1.30.0",
            "--strict",
            str(target),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

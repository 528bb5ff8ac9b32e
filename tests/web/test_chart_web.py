"""The umbrella chart's web front (charts/carenet/templates/web.yaml; ``web.enabled`` is on by
default and off in the minimal profile), rendered over the default and the production profile, and validated against the
Kubernetes schemas: Deployment with HTTP probes, Service, NetworkPolicy that admits the
gateway and reaches only DNS, the issuer, the four services and the collector, the services
admitting the web pods, the HTTPRoute, secrets only from existing Secrets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.chart import CHART, component, one, production, render
from testkit.idp import repo_root

REPO = repo_root(Path(__file__))
SERVICES = ("identity", "referral", "careplan", "outcomes")
WEB = {
    "web": {"enabled": True, "publicUrl": "https://zorg.example.nl", "hostname": "zorg.example.nl"}
}


@pytest.fixture(scope="module", params=["default", "production"])
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    values = WEB if request.param == "default" else production(WEB)
    return render(values)


def test_the_web_deployment_probes_over_http_and_takes_secrets_from_existing_secrets(
    objects: list[dict[str, Any]],
) -> None:
    deployment = one(objects, "Deployment", "carenet-web")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in container["env"]}
    assert env["WEB_OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "carenet-web-oidc"
    assert env["WEB_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "carenet-web-secret-key"
    assert env["WEB_PUBLIC_URL"]["value"] == "https://zorg.example.nl"
    assert env["WEB_SECURE_COOKIES"]["value"] == "true"
    for svc in SERVICES:
        assert env[f"WEB_{svc.upper()}_TARGET"]["value"] == (
            f"dns:///carenet-{svc}.carenet.svc.cluster.local:50051"
        )
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    service = one(objects, "Service", "carenet-web")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_web_reaches_only_dns_the_issuer_the_services_and_the_collector(
    objects: list[dict[str, Any]],
) -> None:
    policy = one(objects, "NetworkPolicy", "carenet-web")["spec"]
    reached = [component(peer) for rule in policy["egress"] for peer in rule["to"]]
    assert set(SERVICES) <= set(reached)
    service_rule = next(
        r for r in policy["egress"] if any(component(p) == "identity" for p in r["to"])
    )
    assert service_rule["ports"] == [{"port": 50051, "protocol": "TCP"}]
    for rule in policy.get("ingress", []):
        assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]
    # every service admits the web pods
    for svc in SERVICES:
        admitted = [
            component(peer)
            for rule in one(objects, "NetworkPolicy", f"carenet-{svc}")["spec"]["ingress"]
            for peer in rule["from"]
        ]
        assert "web" in admitted, svc


def test_production_routes_the_web_hostname_to_the_front() -> None:
    objects = render(production(WEB))
    route = one(objects, "HTTPRoute", "carenet-web")
    assert route["spec"]["hostnames"] == ["zorg.example.nl"]
    # attached to the release's Gateway, on the listener for the web host name
    assert route["spec"]["parentRefs"] == [{"name": "carenet", "sectionName": "https-web"}]
    listeners = {x["name"]: x for x in one(objects, "Gateway", "carenet")["spec"]["listeners"]}
    assert listeners["https-web"]["hostname"] == "zorg.example.nl"
    assert listeners["https-web"]["tls"]["certificateRefs"] == [
        {"kind": "Secret", "name": "carenet-web-tls-public"}
    ]
    assert listeners["https"]["hostname"] == "api.carenet.example"
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "carenet-web", "port": 80}]
    assert one(objects, "Certificate", "carenet-web")["spec"]["usages"] == ["client auth"]


def test_the_web_front_is_on_by_default_and_off_in_the_minimal_profile() -> None:
    assert one(render({}), "Deployment", "carenet-web")
    minimal = yaml.safe_load((CHART / "values-minimal.yaml").read_text())
    assert not [o for o in render(minimal) if o["metadata"]["name"] == "carenet-web"]


def test_without_web_nothing_of_it_renders_and_services_admit_no_web_pods() -> None:
    objects = render({"web": {"enabled": False}})
    assert not [o for o in objects if o["metadata"]["name"] == "carenet-web"]
    for svc in SERVICES:
        admitted = [
            component(peer)
            for rule in one(objects, "NetworkPolicy", f"carenet-{svc}")["spec"]["ingress"]
            for peer in rule["from"]
        ]
        assert "web" not in admitted, svc
    gateway = one(
        render(production({"web": {"enabled": False}, "fhir": {"enabled": False}})),
        "Gateway",
        "carenet",
    )
    assert [x["name"] for x in gateway["spec"]["listeners"]] == ["https"]


def test_web_with_a_service_turned_off_fails_the_render_naming_it() -> None:
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    with pytest.raises(helm.HelmError, match=r"services\.careplan\.enabled"):
        render({"services": {"careplan": {"enabled": False}}})


def test_more_than_one_replica_needs_a_shared_session_volume() -> None:
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    with pytest.raises(helm.HelmError, match="existingClaim"):
        render({"web": {**WEB["web"], "replicaCount": 2}})
    objects = render({"web": {**WEB["web"], "replicaCount": 2, "sessions": {"existingClaim": "s"}}})
    volumes = one(objects, "Deployment", "carenet-web")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "sessions", "persistentVolumeClaim": {"claimName": "s"}} in volumes


def test_the_rendered_objects_are_valid_kubernetes(tmp_path: Path) -> None:
    objects = [o for o in render(production(WEB)) if o["metadata"]["name"] == "carenet-web"]
    builtin = [o for o in objects if o["kind"] not in ("HTTPRoute", "Certificate")]
    target = tmp_path / "web.yaml"
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

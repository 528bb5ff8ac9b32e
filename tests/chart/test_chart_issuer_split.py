"""The public issuer named in tokens, and the in-cluster URLs pods fetch tokens and keys
from: every URL a pod fetches from is one its egress policy admits."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

HERE = Path(__file__).resolve().parent


def _load_rendered() -> ModuleType:
    name = "carenet_chart_rendered"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "rendered.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rendered = _load_rendered()
PUBLIC = "https://login.carenet.example/realms/carenet"
INTERNAL = "http://keycloak.keycloak.svc.cluster.local:8080/realms/carenet"


def _values(**oidc: str) -> dict[str, Any]:
    import yaml  # type: ignore[import-untyped,unused-ignore]

    values: dict[str, Any] = yaml.safe_load((rendered.CHART / "values-production.yaml").read_text())
    values["oidc"] = oidc
    return values


def _fetched_hosts(objs: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Per Deployment, the hosts its pods fetch from (JWKS and token endpoints)."""
    hosts: dict[str, set[str]] = {}
    for deployment in (o for o in objs if o["kind"] == "Deployment"):
        env = rendered.env_of(rendered.pod_spec(deployment)["containers"][0])
        prefix = rendered.service_of(deployment).upper()
        urls = [env.get(f"{prefix}_OIDC_JWKS_URL", env[f"{prefix}_OIDC_ISSUER"])["value"]]
        if rendered.service_of(deployment) in rendered.FRONTS:
            # an HTTP front reads discovery, keys and tokens from the in-cluster URL (the web
            # front), or only the keys (the FHIR API, which forwards its callers' tokens)
            internal = env.get(f"{prefix}_OIDC_INTERNAL_URL")
            urls = [internal["value"]] if internal else urls
        elif any(k.endswith("_TARGET") for k in env):  # a caller: it fetches its own tokens
            urls.append(
                env.get(f"{prefix}_OIDC_INTERNAL_URL", env[f"{prefix}_OIDC_ISSUER"])["value"]
            )
        hosts[deployment["metadata"]["name"]] = {str(urlsplit(u).hostname) for u in urls}
    return hosts


def _admitted_namespaces(objs: list[dict[str, Any]], deployment: str) -> set[str]:
    policy = next(
        o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == deployment
    )
    found = set()
    for rule in policy["spec"]["egress"]:
        for peer in rule.get("to", []):
            labels = peer.get("namespaceSelector", {}).get("matchLabels", {})
            if "kubernetes.io/metadata.name" in labels:
                found.add(labels["kubernetes.io/metadata.name"])
    return found


def test_a_public_issuer_without_an_in_cluster_url_fails_the_render() -> None:
    with pytest.raises(Exception, match=r"oidc\.internalUrl"):
        rendered.render_values(_values(issuer=PUBLIC))


def test_with_a_public_issuer_pods_fetch_only_from_the_in_cluster_url_their_egress_admits() -> None:
    objs = rendered.render_values(_values(issuer=PUBLIC, internalUrl=INTERNAL))
    for deployment, hosts in _fetched_hosts(objs).items():
        assert hosts == {"keycloak.keycloak.svc.cluster.local"}, deployment
        # the host's namespace (keycloak) is the one networkPolicy.issuer admits
        assert "keycloak" in _admitted_namespaces(objs, deployment)
    issuers = {
        e["value"]
        for o in objs
        if o["kind"] == "Deployment"
        for k, e in rendered.env_of(rendered.pod_spec(o)["containers"][0]).items()
        if k.endswith("_OIDC_ISSUER")
    }
    assert issuers == {PUBLIC}  # tokens are still checked against the public issuer


def test_an_in_cluster_issuer_is_fetched_from_directly() -> None:
    objs = rendered.render_values(_values(issuer=INTERNAL))
    for deployment, hosts in _fetched_hosts(objs).items():
        assert hosts == {"keycloak.keycloak.svc.cluster.local"}, deployment
        env = rendered.env_of(
            rendered.pod_spec(
                next(
                    o
                    for o in objs
                    if o["metadata"]["name"] == deployment and o["kind"] == "Deployment"
                )
            )["containers"][0]
        )
        assert not any(k.endswith("_OIDC_INTERNAL_URL") for k in env)


def test_every_alert_links_to_its_section_of_the_runbook() -> None:
    import re

    objs = rendered.render_values(_values(issuer=PUBLIC, internalUrl=INTERNAL))
    [rule] = [o for o in objs if o["kind"] == "PrometheusRule"]
    runbook = (rendered.CHART.parents[1] / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line[4:].strip().lower()).replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("### ")
    }
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == {
        "CarenetErrorBudgetBurn",
        "CarenetRpcLatencyHigh",
        "CarenetAccessLogVerificationFailed",
        "CarenetOutboxLag",
    }
    for alert in alerts:
        link = alert["annotations"]["runbook"]
        assert link == f"docs/operations.md#{alert['alert'].lower()}"
        assert alert["alert"].lower() in anchors, alert["alert"]

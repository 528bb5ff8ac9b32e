"""What the chart promises about the page-token keys and identity's people sync.

Every service signs its page tokens with ``<SVC>_PAGE_TOKEN_KEY``; all replicas must share
it, so the chart gives it from an existing Secret and refuses to render without one.
``identity sync-people`` keeps identity's people directory (whom a delegate may act for)
current from Keycloak: a CronJob with the restricted pod security, runs that never overlap,
and a NetworkPolicy that lets it reach DNS, its database and Keycloak only.

Run by `python tests/chart/check.py` (promises step) over the files it rendered, like
test_chart_promises.py; on its own it renders the chart itself.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

try:
    import helm_python  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
except ImportError:  # the chart tests cannot run without Helm's engine: say so, do not skip
    pytest.fail(
        "the chart tests need their packages: pip install -r tests/chart/requirements.txt",
        pytrace=False,
    )

HERE = Path(__file__).resolve().parent


def _load_rendered() -> ModuleType:
    spec = importlib.util.spec_from_file_location("carenet_chart_rendered", HERE / "rendered.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rendered = _load_rendered()
check = rendered.check
CHART: Path = rendered.CHART
PROFILES: list[str] = rendered.PROFILES
SERVICES: list[str] = rendered.SERVICES
ENABLED: dict[str, list[str]] = rendered.ENABLED
of_kind = rendered.of_kind
name = rendered.name
pod_spec = rendered.pod_spec
pod_labels = rendered.pod_labels
containers = rendered.containers
selects = rendered.selects
pod_owners = rendered.pod_owners
service_of = rendered.service_of
hooks = rendered.hooks
env_of = rendered.env_of
assert_restricted = rendered.assert_restricted
render_values = rendered.render_values

SYNC = "identity-sync-people"
KEYCLOAK_ADMIN_SETTINGS = {
    "IDENTITY_KEYCLOAK_ADMIN_URL",
    "IDENTITY_KEYCLOAK_ADMIN_REALM",
    "IDENTITY_KEYCLOAK_REALM",
    "IDENTITY_KEYCLOAK_ADMIN_CLIENT_ID",
    "IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET",
}


def page_token_setting(svc: str) -> str:
    return f"{svc.upper()}_PAGE_TOKEN_KEY"


def production_values() -> dict[str, Any]:
    values = check.profile_values(CHART, "production")
    assert isinstance(values, dict)
    return values


def network_policy_values(profile: str) -> dict[str, Any]:
    """The profile's networkPolicy values (each peer group as the profile or the defaults set it)."""
    import yaml  # type: ignore[import-untyped,unused-ignore]

    defaults: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())["networkPolicy"]
    overrides = (check.profile_values(CHART, profile) or {}).get("networkPolicy", {})
    return {key: overrides.get(key, value) for key, value in defaults.items()}


def identity_deployment(objs: list[dict[str, Any]]) -> dict[str, Any]:
    [identity] = [o for o in objs if o["kind"] == "Deployment" and service_of(o) == "identity"]
    return identity


def sync_objects(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind and service_of(o) == SYNC]


# --------------------------------------------------------------------------- page-token keys


@pytest.mark.parametrize("svc", SERVICES)
def test_the_page_token_setting_is_the_one_the_service_reads(svc: str) -> None:
    settings = importlib.import_module(f"{svc}.config").Settings
    assert "page_token_key" in settings.model_fields
    assert f"{settings.model_config['env_prefix']}PAGE_TOKEN_KEY" == page_token_setting(svc)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_service_signs_page_tokens_with_a_key_from_an_existing_secret(profile: str) -> None:
    # the gRPC services (the HTTP fronts hand out no page tokens of their own)
    deployments = rendered.grpc_deployments(profile)
    assert sorted(service_of(d) for d in deployments) == sorted(ENABLED[profile])
    for deployment in deployments:
        svc = service_of(deployment)
        env = env_of(pod_spec(deployment)["containers"][0])
        assert env.get(page_token_setting(svc)) == {
            "name": page_token_setting(svc),
            "valueFrom": {"secretKeyRef": {"name": f"carenet-{svc}-page-token", "key": "key"}},
        }, name(deployment)
    # Only the serving pods hold a page-token key: migrations and the sync sign no tokens.
    for owner in pod_owners(profile):
        if owner["kind"] != "Deployment":
            for c in containers(pod_spec(owner)):
                assert not [k for k in env_of(c) if k.endswith("_PAGE_TOKEN_KEY")], name(owner)


@pytest.mark.parametrize("svc", SERVICES)
def test_production_without_a_page_token_key_fails_the_render(svc: str) -> None:
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    # As shipped, production renders and gives the service its key ...
    [deployment] = [
        d
        for d in render_values(production_values())
        if d["kind"] == "Deployment" and service_of(d) == svc
    ]
    assert "secretKeyRef" in env_of(pod_spec(deployment)["containers"][0])[
        page_token_setting(svc)
    ].get("valueFrom", {})
    # ... and without the key (removed, or its Secret or key left empty) it does not render,
    # because the key is missing (not, say, because the values have a key the chart lacks).
    at = f"/services/{svc}"
    for key, reason in (
        (None, f"at '{at}': missing property 'pageTokenKey'"),
        ({"existingSecret": None}, f"at '{at}/pageTokenKey': missing property 'existingSecret'"),
        ({"existingSecret": ""}, f"at '{at}/pageTokenKey/existingSecret': minLength"),
        ({"key": ""}, f"at '{at}/pageTokenKey/key': minLength"),
    ):
        values = production_values()
        values["services"][svc]["pageTokenKey"] = key
        with pytest.raises(helm.HelmError, match=re.escape(reason)):
            render_values(values)


def test_without_the_schema_the_templates_still_refuse_a_missing_page_token_key(
    tmp_path: Path,
) -> None:
    # `helm install --skip-schema-validation` leaves only the templates' own guard.
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    chart = tmp_path / "carenet"
    shutil.copytree(CHART, chart)
    (chart / "values.schema.json").unlink()
    assert render_values(production_values(), chart)
    for svc in SERVICES:
        values = production_values()
        values["services"][svc]["pageTokenKey"] = None
        message = f"services.{svc}.pageTokenKey.existingSecret is required"
        with pytest.raises(helm.HelmError, match=re.escape(message)):
            render_values(values, chart)


# --------------------------------------------------------------------------- people sync


@pytest.mark.parametrize("profile", PROFILES)
def test_identity_syncs_its_people_directory_from_keycloak_every_five_minutes(
    profile: str,
) -> None:
    [cron] = sync_objects(rendered.objects(profile), "CronJob")
    identity = pod_spec(identity_deployment(rendered.objects(profile)))["containers"][0]
    spec = cron["spec"]
    assert spec["schedule"] == "*/5 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid", "runs must never overlap"
    assert 0 < spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] <= 300
    assert not hooks(cron), "an ordinary object: it runs after the migrations, between upgrades"
    assert_restricted(cron)
    pod = pod_spec(cron)
    assert pod["restartPolicy"] == "Never"
    accounts = {a["metadata"]["name"]: a for a in of_kind(profile, "ServiceAccount")}
    account = accounts[pod["serviceAccountName"]]
    assert service_of(account) == SYNC, "an account of its own"
    assert account["automountServiceAccountToken"] is False
    [c] = pod["containers"]
    assert c["args"] == ["sync-people"]
    assert c["image"] == identity["image"], "identity's image"
    assert c["resources"] == identity["resources"]
    assert c["resources"]["requests"] and c["resources"]["limits"]
    env = env_of(c)
    assert env["IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "carenet-identity-people-sync",
        "key": "client-secret",
    }
    assert env["IDENTITY_KEYCLOAK_ADMIN_URL"]["value"] == (
        "http://keycloak.keycloak.svc.cluster.local:8080"
    )
    assert env["IDENTITY_KEYCLOAK_ADMIN_REALM"]["value"] == "master"
    assert env["IDENTITY_KEYCLOAK_REALM"]["value"] == "carenet"
    assert env["IDENTITY_KEYCLOAK_ADMIN_CLIENT_ID"]["value"] == "carenet-identity-people-sync"
    for setting in (
        "IDENTITY_DATABASE_URL",
        "IDENTITY_BSN_PEPPER",
    ):  # identity's Settings need both
        assert (
            env[setting]["valueFrom"]["secretKeyRef"]
            == (env_of(identity)[setting]["valueFrom"]["secretKeyRef"])
        ), setting
    assert env["OTEL_SDK_DISABLED"]["value"] == "true"
    # Nothing it does not need: no access-log keys, no page-token key (checked above).
    assert not [v for v in pod.get("volumes", []) if v["name"].startswith("access-log")]
    assert not [k for k in env if k.startswith("IDENTITY_ACCESS_LOG_")]


@pytest.mark.parametrize("profile", PROFILES)
def test_the_people_sync_reaches_only_dns_its_database_and_keycloak(profile: str) -> None:
    [cron] = sync_objects(rendered.objects(profile), "CronJob")
    labels = pod_labels(cron)
    policies = [
        p for p in of_kind(profile, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)
    ]
    assert [service_of(p) for p in policies] == [SYNC], "exactly one policy, its own"
    [policy] = policies
    assert not hooks(policy)
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert not policy["spec"].get("ingress"), "nothing calls the sync"
    peers = network_policy_values(profile)
    assert policy["spec"]["egress"] == [
        {"to": peers[group]["to"], "ports": peers[group]["ports"]}
        for group in ("dns", "database", "issuer")
    ]
    # ... and no carenet service lets it in: it talks to none of them.
    for other in of_kind(profile, "NetworkPolicy"):
        for rule in other["spec"].get("ingress", []):
            for peer in rule["from"]:
                assert not selects(peer.get("podSelector", {}), labels), name(other)


def test_the_people_sync_schedule_and_admin_client_are_values_and_it_can_be_switched_off() -> None:
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    values = production_values()
    values["services"]["identity"]["peopleSync"] = {
        "schedule": "17 * * * *",
        "keycloakAdmin": {
            "clientId": "people-reader",
            "clientSecret": {"existingSecret": "kc-people-reader", "key": "secret"},
        },
    }
    [cron] = sync_objects(render_values(values), "CronJob")
    assert cron["spec"]["schedule"] == "17 * * * *"
    env = env_of(pod_spec(cron)["containers"][0])
    assert env["IDENTITY_KEYCLOAK_ADMIN_CLIENT_ID"]["value"] == "people-reader"
    assert env["IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "kc-people-reader",
        "key": "secret",
    }

    # Provisioning settings given to identity through extraEnv/secretEnv do not reach the
    # CronJob twice: it sets the Keycloak admin settings itself.
    values = production_values()
    values["services"]["identity"]["extraEnv"] = [
        {"name": "IDENTITY_KEYCLOAK_ADMIN_CLIENT_ID", "value": "provisioner"}
    ]
    values["services"]["identity"]["secretEnv"] = [
        {
            "name": "IDENTITY_BSN_PEPPER",
            "existingSecret": "carenet-identity-bsn-pepper",
            "key": "pepper",
        },
        {"name": "IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET", "existingSecret": "prov", "key": "s"},
    ]
    objs = render_values(values)
    [cron] = sync_objects(objs, "CronJob")
    names = [e["name"] for e in pod_spec(cron)["containers"][0]["env"]]
    assert sorted(n for n in names if n in KEYCLOAK_ADMIN_SETTINGS) == sorted(
        KEYCLOAK_ADMIN_SETTINGS
    )
    assert len(names) == len(set(names)), "a variable set twice"
    identity_env = env_of(pod_spec(identity_deployment(objs))["containers"][0])
    assert identity_env["IDENTITY_KEYCLOAK_ADMIN_CLIENT_ID"]["value"] == "provisioner"

    for broken in (
        {"keycloakAdmin": {"clientSecret": {"existingSecret": ""}}},
        {"keycloakAdmin": {"url": ""}},
        {"schedule": "every five minutes"},
    ):
        values = production_values()
        values["services"]["identity"]["peopleSync"] = copy.deepcopy(broken)
        with pytest.raises(helm.HelmError):
            render_values(values)

    values = production_values()
    values["services"]["identity"]["peopleSync"] = {"enabled": False}
    objs = render_values(values)
    assert not [o for o in objs if service_of(o) == SYNC]
    assert identity_deployment(objs)

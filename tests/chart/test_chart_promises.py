"""What the chart promises, checked on the rendered objects of every profile.

`python tests/chart/check.py` runs this module over the files it rendered (environment
variable CARENET_CHART_RENDER_DIR). Run on its own (`pytest tests/chart/test_chart_promises.py`)
it renders the chart itself with the same code (tests/chart/rendered.py). The page-token keys
and identity's people sync have their promises in test_chart_page_tokens_and_people_sync.py.
"""

from __future__ import annotations

import importlib.util
import re
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
REPO = HERE.parents[1]


def _load_rendered() -> ModuleType:
    spec = importlib.util.spec_from_file_location("carenet_chart_rendered", HERE / "rendered.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rendered = _load_rendered()
check = rendered.check
PROFILES = rendered.PROFILES
SERVICES = rendered.SERVICES
ENABLED = rendered.ENABLED
CALLS = rendered.CALLS
FRONTS = rendered.FRONTS
FRONTS_ENABLED = rendered.FRONTS_ENABLED
grpc_deployments = rendered.grpc_deployments
front_deployments = rendered.front_deployments
objects = rendered.objects
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

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"}
SECRETISH_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_?KEY|DATABASE_URL|_DSN$", re.I
)
URL_WITH_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.I)


# --------------------------------------------------------------------------- every object


@pytest.mark.parametrize("profile", PROFILES)
def test_every_namespaced_object_names_the_release_namespace(profile: str) -> None:
    for obj in objects(profile):
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == check.NAMESPACE, name(obj)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_object_carries_the_standard_labels(profile: str) -> None:
    for obj in objects(profile):
        labels = obj["metadata"].get("labels", {})
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/component",
            "helm.sh/chart",
        ):
            assert key in labels, f"{name(obj)} lacks label {key}"


@pytest.mark.parametrize("profile", PROFILES)
def test_the_chart_renders_no_secret_object(profile: str) -> None:
    assert not of_kind(profile, "Secret"), "secrets must already exist; the chart only names them"


# --------------------------------------------------------------------------- pods and containers


@pytest.mark.parametrize("profile", PROFILES)
def test_every_container_runs_with_the_restricted_security_context(profile: str) -> None:
    owners = pod_owners(profile)
    assert {o["kind"] for o in owners} >= {"Deployment", "Job", "Pod", "CronJob"}
    for owner in owners:
        assert_restricted(owner)


@pytest.mark.parametrize("profile", PROFILES)
def test_service_and_migration_pods_get_a_writable_tmp_on_an_emptydir(profile: str) -> None:
    for owner in of_kind(profile, "Deployment") + of_kind(profile, "Job"):
        spec = pod_spec(owner)
        empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for c in spec["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            tmp = mounts.get("/tmp")  # noqa: S108 (the pods' /tmp mount, not a temporary file)
            assert tmp in empty_dirs, f"{name(owner)}: /tmp is not an emptyDir"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_container_has_resource_requests_and_limits(profile: str) -> None:
    for owner in pod_owners(profile):
        for c in containers(pod_spec(owner)):
            resources = c.get("resources", {})
            for part in ("requests", "limits"):
                for res in ("cpu", "memory"):
                    assert res in resources.get(part, {}), (
                        f"{name(owner)} {c['name']}: {part}.{res}"
                    )


@pytest.mark.parametrize("profile", PROFILES)
def test_no_image_is_latest_or_untagged(profile: str) -> None:
    for owner in pod_owners(profile):
        for c in containers(pod_spec(owner)):
            image = c["image"].split("@", 1)[0]
            last = image.rsplit("/", 1)[-1]
            assert ":" in last, f"{name(owner)}: image {c['image']} has no tag"
            tag = last.rsplit(":", 1)[1]
            assert tag and tag.lower() != "latest", (
                f"{name(owner)}: image {c['image']} uses {tag!r}"
            )


def test_setting_latest_as_a_tag_fails_the_render() -> None:
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    chart = REPO / "charts" / "carenet"
    with helm.Chart.load(str(chart)) as loaded:
        for values in (
            {"default": {"image": {"tag": "latest"}}},
            {"services": {"identity": {"enabled": True, "image": {"tag": "Latest"}}}},
            {"tests": {"image": {"tag": "latest"}}},
        ):
            with pytest.raises(helm.HelmError):
                loaded.render(values, name=check.RELEASE, namespace=check.NAMESPACE)


@pytest.mark.parametrize("profile", PROFILES)
def test_no_secret_travels_as_a_plain_env_value(profile: str) -> None:
    for owner in pod_owners(profile):
        for c in containers(pod_spec(owner)):
            for var in c.get("env", []):
                if "value" not in var:
                    continue
                value = str(var["value"])
                assert not SECRETISH_NAME.search(var["name"]), (
                    f"{name(owner)}: {var['name']} is a plain value"
                )
                assert not URL_WITH_CREDENTIALS.search(value), (
                    f"{name(owner)}: {var['name']} holds credentials"
                )


@pytest.mark.parametrize("profile", PROFILES)
def test_database_url_client_secret_and_bsn_pepper_come_from_existing_secrets(profile: str) -> None:
    for owner in grpc_deployments(profile) + of_kind(profile, "Job"):
        svc = service_of(owner).removesuffix("-migrate")
        prefix = svc.upper()
        env = env_of(pod_spec(owner)["containers"][0])
        assert (
            env[f"{prefix}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
            == f"carenet-{svc}-db"
        )
        if CALLS[svc]:
            ref = env[f"{prefix}_OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == f"carenet-{svc}-oidc"
            assert env[f"{prefix}_OIDC_CLIENT_ID"]["value"] == f"svc-{svc}"
        else:
            assert f"{prefix}_OIDC_CLIENT_SECRET" not in env
        if svc == "identity":
            ref = env["IDENTITY_BSN_PEPPER"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "carenet-identity-bsn-pepper", "key": "pepper"}


@pytest.mark.parametrize("profile", PROFILES)
def test_identity_reads_its_access_log_keys_as_read_only_files_from_existing_objects(
    profile: str,
) -> None:
    [identity] = [d for d in of_kind(profile, "Deployment") if service_of(d) == "identity"]
    spec = pod_spec(identity)
    volumes = {v["name"]: v for v in spec["volumes"]}
    container = spec["containers"][0]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    env = env_of(container)
    expected = {
        "access-log-chain-keys": ("secret", "IDENTITY_ACCESS_LOG_HMAC_KEYS_DIR"),
        "access-log-signing-key": ("secret", "IDENTITY_ACCESS_LOG_SIGNING_KEY_FILE"),
        "access-log-public-keys": ("configMap", "IDENTITY_ACCESS_LOG_PUBLIC_KEYS_DIR"),
    }
    for volume, (source, setting) in expected.items():
        assert set(volumes[volume]) == {"name", source}, volume
        assert mounts[volume]["readOnly"] is True, volume
        assert env[setting]["value"].startswith(mounts[volume]["mountPath"]), setting
    assert volumes["access-log-chain-keys"]["secret"]["secretName"] == (
        "carenet-identity-access-log-chain"
    )
    assert volumes["access-log-signing-key"]["secret"]["secretName"] == (
        "carenet-identity-access-log-signing"
    )
    assert env["IDENTITY_ACCESS_LOG_HMAC_KEY_ID"]["value"]
    assert env["IDENTITY_ACCESS_LOG_SIGNING_KEY_ID"]["value"]
    store = mounts["access-log-checkpoints"]
    assert not store.get("readOnly")
    assert env["IDENTITY_ACCESS_LOG_CHECKPOINT_DIR"]["value"] == store["mountPath"]
    # No other service sees the access-log keys.
    for other in of_kind(profile, "Deployment") + of_kind(profile, "Job"):
        if other is not identity:
            names = {v["name"] for v in pod_spec(other).get("volumes", [])}
            assert not {n for n in names if n.startswith("access-log")}, name(other)


def test_production_keeps_the_checkpoints_on_a_persistent_volume() -> None:
    for profile, durable in (("production", True), ("default", False), ("minimal", False)):
        [identity] = [d for d in of_kind(profile, "Deployment") if service_of(d) == "identity"]
        [store] = [
            v for v in pod_spec(identity)["volumes"] if v["name"] == "access-log-checkpoints"
        ]
        assert ("persistentVolumeClaim" in store) is durable, profile
        assert ("emptyDir" in store) is not durable, profile


def test_identity_without_access_log_key_ids_fails_the_render() -> None:
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    chart = REPO / "charts" / "carenet"
    with helm.Chart.load(str(chart)) as loaded:
        for access_log in (
            {"chainKeys": {"currentKeyId": ""}},
            {"signingKey": {"keyId": ""}},
            {"chainKeys": {"currentKeyId": "not a key id"}},
            {"publicKeys": {"existingConfigMap": ""}},
        ):
            values = {"services": {"identity": {"enabled": True, "accessLog": access_log}}}
            with pytest.raises(helm.HelmError):
                loaded.render(values, name=check.RELEASE, namespace=check.NAMESPACE)


# --------------------------------------------------------------------------- deployments


@pytest.mark.parametrize("profile", PROFILES)
def test_the_profile_deploys_exactly_its_services(profile: str) -> None:
    deployed = sorted(service_of(d) for d in of_kind(profile, "Deployment"))
    assert deployed == sorted(ENABLED[profile] + FRONTS_ENABLED[profile])


@pytest.mark.parametrize("profile", PROFILES)
def test_every_grpc_deployment_has_grpc_startup_readiness_and_liveness_probes(
    profile: str,
) -> None:
    for deployment in grpc_deployments(profile):
        for c in pod_spec(deployment)["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in c, f"{name(deployment)}: no {probe}"
                # With TLS on, the kubelet (which cannot speak TLS) probes the plaintext
                # health-only port <SVC>_HEALTH_PORT.
                env = env_of(c)
                health = next((v for k, v in env.items() if k.endswith("_HEALTH_PORT")), None)
                port = int(health["value"]) if health else 50051
                assert c[probe].get("grpc", {}).get("port") == port, (
                    f"{name(deployment)}: {probe} is not gRPC on {port}"
                )
            assert {"containerPort": 50051, "name": "grpc", "protocol": "TCP"} in c["ports"]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_http_front_has_http_probes_on_healthz_and_readyz_and_no_grpc(profile: str) -> None:
    for deployment in front_deployments(profile):
        [c] = pod_spec(deployment)["containers"]
        ports = {p["name"]: p for p in c["ports"]}
        assert set(ports) == {"http"}, f"{name(deployment)}: ports {sorted(ports)}"
        expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz"}
        expected["readinessProbe"] = "/readyz"
        for probe, path in expected.items():
            assert probe in c, f"{name(deployment)}: no {probe}"
            assert "grpc" not in c[probe], f"{name(deployment)}: {probe} is gRPC"
            assert c[probe]["httpGet"] == {"path": path, "port": "http"}, (
                f"{name(deployment)}: {probe}"
            )
        env = env_of(c)
        assert not {k for k in env if k.endswith(("_GRPC_PORT", "_HEALTH_PORT", "_DATABASE_URL"))}
        [service] = [
            s for s in of_kind(profile, "Service") if service_of(s) == service_of(deployment)
        ]
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_deployment_has_a_pdb_a_networkpolicy_a_service_and_an_account(profile: str) -> None:
    pdbs = of_kind(profile, "PodDisruptionBudget")
    policies = of_kind(profile, "NetworkPolicy")
    services = of_kind(profile, "Service")
    accounts = {a["metadata"]["name"]: a for a in of_kind(profile, "ServiceAccount")}
    for deployment in of_kind(profile, "Deployment"):
        labels = pod_labels(deployment)
        assert selects(deployment["spec"]["selector"], labels)
        assert any(selects(p["spec"]["selector"], labels) for p in pdbs), (
            f"{name(deployment)}: no PDB"
        )
        assert any(
            selects(p["spec"]["podSelector"], labels)
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            for p in policies
        ), f"{name(deployment)}: no NetworkPolicy with Ingress and Egress"
        assert any(
            all(labels.get(k) == v for k, v in s["spec"]["selector"].items()) for s in services
        ), f"{name(deployment)}: no Service"
        account = accounts[pod_spec(deployment)["serviceAccountName"]]
        assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("profile", PROFILES)
def test_every_pod_is_selected_by_a_networkpolicy(profile: str) -> None:
    policies = of_kind(profile, "NetworkPolicy")
    for owner in pod_owners(profile):
        labels = pod_labels(owner)
        matching = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        assert matching, f"{name(owner)}: no NetworkPolicy selects its pods"
        if hooks(owner) & {"pre-install", "pre-upgrade"}:
            # a hook's pods exist before the ordinary objects: its policy must be a hook too
            assert any(hooks(p) >= hooks(owner) for p in matching), (
                f"{name(owner)}: its NetworkPolicy is not a hook"
            )


@pytest.mark.parametrize("profile", PROFILES)
def test_no_networkpolicy_rule_is_open_to_everything(profile: str) -> None:
    for policy in of_kind(profile, "NetworkPolicy"):
        spec = policy["spec"]
        assert spec["podSelector"].get("matchLabels"), f"{name(policy)} selects every pod"
        for rule in spec.get("ingress", []):
            assert rule.get("from"), f"{name(policy)}: ingress rule without `from` admits everyone"
            assert rule.get("ports"), f"{name(policy)}: ingress rule without ports"
        for rule in spec.get("egress", []):
            assert rule.get("to"), f"{name(policy)}: egress rule without `to` reaches everything"
            assert rule.get("ports"), f"{name(policy)}: egress rule without ports"


def _component_peers(rules: list[dict[str, Any]], key: str) -> set[str]:
    peers = set()
    for rule in rules:
        for peer in rule[key]:
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            if "namespaceSelector" not in peer and "app.kubernetes.io/component" in labels:
                peers.add(labels["app.kubernetes.io/component"])
    return peers


@pytest.mark.parametrize("profile", PROFILES)
def test_services_admit_only_their_real_callers_and_reach_only_their_callees(profile: str) -> None:
    enabled = ENABLED[profile] + FRONTS_ENABLED[profile]
    for policy in of_kind(profile, "NetworkPolicy"):
        svc = service_of(policy)
        if svc not in SERVICES:
            continue
        callers = {s for s in enabled if svc in CALLS[s]}
        assert _component_peers(policy["spec"]["ingress"], "from") == callers | {"test"}, name(
            policy
        )
        assert _component_peers(policy["spec"]["egress"], "to") == set(CALLS[svc]), name(policy)


@pytest.mark.parametrize("profile", PROFILES)
def test_callers_know_where_their_callees_are(profile: str) -> None:
    for deployment in of_kind(profile, "Deployment"):
        svc = service_of(deployment)
        env = env_of(pod_spec(deployment)["containers"][0])
        prefix = svc.upper()
        if svc in SERVICES:
            assert env[f"{prefix}_GRPC_PORT"]["value"] == "50051"
            assert env[f"{prefix}_OIDC_AUDIENCE"]["value"] == f"carenet-{svc}"
        assert env[f"{prefix}_OIDC_ISSUER"]["value"].endswith("/realms/carenet")
        targets = {k for k in env if k.endswith("_TARGET")}
        assert targets == {f"{prefix}_{callee.upper()}_TARGET" for callee in CALLS[svc]}
        for callee in CALLS[svc]:
            assert (
                env[f"{prefix}_{callee.upper()}_TARGET"]["value"]
                == f"dns:///{check.RELEASE}-{callee}.{check.NAMESPACE}.svc.cluster.local:50051"
            )
        assert env["OTEL_SERVICE_NAME"]["value"] == svc


# --------------------------------------------------------------------------- hooks and tests


@pytest.mark.parametrize("profile", PROFILES)
def test_every_service_has_a_pre_install_and_pre_upgrade_migration_job(profile: str) -> None:
    jobs = {service_of(j).removesuffix("-migrate"): j for j in of_kind(profile, "Job")}
    assert sorted(jobs) == sorted(ENABLED[profile])
    accounts = {a["metadata"]["name"]: a for a in of_kind(profile, "ServiceAccount")}
    for svc, job in jobs.items():
        annotations = job["metadata"]["annotations"]
        assert hooks(job) == {"pre-install", "pre-upgrade"}
        assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {
            "before-hook-creation",
            "hook-succeeded",
        }
        container = pod_spec(job)["containers"][0]
        assert container["args"] == ["migrate"]
        assert container["image"].split(":")[0].endswith(f"/{svc}")
        account = accounts[pod_spec(job)["serviceAccountName"]]
        assert hooks(account) >= hooks(job), "the Job's ServiceAccount must exist before the Job"
        assert int(account["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
            annotations["helm.sh/hook-weight"]
        )


@pytest.mark.parametrize("profile", PROFILES)
def test_the_helm_test_pod_health_checks_every_enabled_service(profile: str) -> None:
    pods = [p for p in of_kind(profile, "Pod") if "test" in hooks(p)]
    assert len(pods) == 1
    probed = sorted(c["name"] for c in pods[0]["spec"]["containers"])
    assert probed == sorted(ENABLED[profile])
    for c in pods[0]["spec"]["containers"]:
        assert f"-addr={check.RELEASE}-{c['name']}:50051" in c["args"]


# --------------------------------------------------------------------------- production


def test_production_is_highly_available_with_every_piece_per_service() -> None:
    profile = "production"
    deployments = {service_of(d): d for d in of_kind(profile, "Deployment")}
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(profile, "HorizontalPodAutoscaler")
    }
    pdbs = of_kind(profile, "PodDisruptionBudget")
    assert sorted(deployments) == sorted(SERVICES + FRONTS_ENABLED[profile])
    for svc in FRONTS_ENABLED[profile]:
        # Two replicas or more; the web front's share their sessions (no HPA: a session
        # volume bounds the count); the FHIR API keeps no state of its own.
        front = deployments.pop(svc)
        assert front["spec"]["replicas"] >= 2, svc
        if svc == "web":
            volumes = {v["name"]: v for v in pod_spec(front)["volumes"]}
            assert "persistentVolumeClaim" in volumes["sessions"], svc
        assert any(selects(p["spec"]["selector"], pod_labels(front)) for p in pdbs), svc
    for svc, deployment in deployments.items():
        labels = pod_labels(deployment)
        hpa = hpas[deployment["metadata"]["name"]]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert (
            hpa["spec"]["minReplicas"] >= 2
            and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
        )
        assert "replicas" not in deployment["spec"], f"{svc}: the HPA owns the replica count"
        pdb = next(p for p in pdbs if selects(p["spec"]["selector"], labels))
        assert pdb["spec"].get("minAvailable", 0) >= 1, f"{svc}: PDB minAvailable"
        spec = pod_spec(deployment)
        assert {t["topologyKey"] for t in spec.get("topologySpreadConstraints", [])} >= {
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
        }
        assert "podAntiAffinity" in spec.get("affinity", {})
        env = env_of(spec["containers"][0])
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"].startswith("http")
        assert "OTEL_SDK_DISABLED" not in env


# --------------------------------------------------------------------------- values schema


def test_the_values_schema_closes_every_object_it_defines() -> None:
    import json

    schema = json.loads((REPO / "charts" / "carenet" / "values.schema.json").read_text())
    open_objects: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                extra = node.get("additionalProperties")
                # closed (false), or a plain string map such as nodeSelector or podLabels
                if extra is not False and extra != {"type": "string"}:
                    open_objects.append(path or "/")
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")

    walk(schema, "")
    assert not open_objects, f"objects without additionalProperties: false: {open_objects}"


@pytest.mark.parametrize("profile", [p for p in PROFILES if check.PROFILES[p]])
def test_every_profile_only_uses_keys_the_defaults_document(profile: str) -> None:
    import yaml  # type: ignore[import-untyped,unused-ignore]

    chart = REPO / "charts" / "carenet"
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    overrides = yaml.safe_load((chart / check.PROFILES[profile]).read_text())

    def walk(over: Any, base: Any, path: str) -> None:
        if not isinstance(over, dict) or path.endswith("resourceAttributes"):
            return
        for key, value in over.items():
            assert isinstance(base, dict) and key in base, (
                f"{profile}: {path}.{key} is not in values.yaml"
            )
            walk(value, base[key], f"{path}.{key}")

    walk(overrides, defaults, "")


@pytest.mark.parametrize("profile", PROFILES)
def test_services_are_headless_and_pods_drain_within_their_grace_period(profile: str) -> None:
    for service in of_kind(profile, "Service"):
        if service_of(service) in SERVICES:
            assert service["spec"]["clusterIP"] == "None"
    for front in front_deployments(profile):
        spec = pod_spec(front)
        pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert spec["terminationGracePeriodSeconds"] > pre_stop, name(front)
    for deployment in grpc_deployments(profile):
        svc = service_of(deployment)
        spec = pod_spec(deployment)
        container = spec["containers"][0]
        env = env_of(container)
        prefix = svc.upper()
        readiness = container["readinessProbe"]
        drain = float(env[f"{prefix}_DRAIN_SECONDS"]["value"])
        assert drain == readiness["periodSeconds"] * readiness["failureThreshold"]
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = float(env[f"{prefix}_SHUTDOWN_GRACE_SECONDS"]["value"])
        assert spec["terminationGracePeriodSeconds"] >= pre_stop + drain + grace
        assert float(env[f"{prefix}_MAX_CONNECTION_AGE_SECONDS"]["value"]) > 0


@pytest.mark.parametrize("profile", PROFILES)
def test_every_route_attaches_to_a_gateway_listener_that_accepts_its_host_names(
    profile: str,
) -> None:
    gateways = {g["metadata"]["name"]: g for g in of_kind(profile, "Gateway")}
    routes = of_kind(profile, "GRPCRoute") + of_kind(profile, "HTTPRoute")
    if profile == "production":
        assert {service_of(r) for r in of_kind(profile, "HTTPRoute")} >= set(
            FRONTS_ENABLED[profile]
        )
    for route in routes:
        for parent in route["spec"]["parentRefs"]:
            gateway = gateways[parent["name"]]
            [listener] = [
                x for x in gateway["spec"]["listeners"] if x["name"] == parent["sectionName"]
            ]
            assert listener["hostname"] in route["spec"]["hostnames"], name(route)
            kinds = {k["kind"] for k in listener.get("allowedRoutes", {}).get("kinds", [])}
            assert not kinds or route["kind"] in kinds, name(route)
            backends = [b["name"] for rule in route["spec"]["rules"] for b in rule["backendRefs"]]
            assert backends == [f"{check.RELEASE}-{service_of(route)}"], name(route)

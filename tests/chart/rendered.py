"""The rendered chart, and how the chart tests look into it.

Shared by the test modules the chart check's `promises` step runs. With the environment
variable CARENET_CHART_RENDER_DIR (set by `python tests/chart/check.py`) the profiles are read
from the files the check rendered; otherwise the chart is rendered here with the same code.
The test modules load this file by path (the tests run with --import-mode=importlib).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHART = REPO / "charts" / "carenet"

_spec = importlib.util.spec_from_file_location("carenet_chart_check", HERE / "check.py")
assert _spec is not None and _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = check  # dataclasses look their module up while being built
_spec.loader.exec_module(check)

PROFILES = list(check.PROFILES)
SERVICES = ["identity", "referral", "careplan", "outcomes"]
ENABLED = {
    "default": ["identity", "referral", "careplan", "outcomes"],
    "minimal": ["identity", "referral"],
    "production": ["identity", "referral", "careplan", "outcomes"],
}
# The HTTP fronts (Flask behind gunicorn): probed over HTTP on /healthz and /readyz, no
# database, no gRPC port. Per profile, the ones it deploys.
FRONTS = ["web", "fhir"]
FRONTS_ENABLED = {
    "default": ["web", "fhir"],
    "minimal": [],
    "production": ["web", "fhir"],
}
# Who calls whom (docs/architecture.md): the only in-release callers a service admits.
CALLS = {
    "identity": [],
    "referral": ["identity"],
    "careplan": ["identity", "referral"],
    "outcomes": ["identity"],
    "web": ["identity", "referral", "careplan", "outcomes"],
    "fhir": ["identity", "referral", "careplan", "outcomes"],
}
POD_OWNERS = {"Deployment", "Job", "Pod", "StatefulSet", "DaemonSet", "CronJob"}


def _render(profile: str) -> Any:
    render_dir = os.environ.get("CARENET_CHART_RENDER_DIR")
    if render_dir:
        return (Path(render_dir) / f"{profile}.yaml").read_text()
    return check.render_profile(CHART, profile)


_CACHE: dict[str, list[dict[str, Any]]] = {}


def objects(profile: str) -> list[dict[str, Any]]:
    if profile not in _CACHE:
        _CACHE[profile] = check.load_objects(_render(profile))
    return _CACHE[profile]


def render_values(values: dict[str, Any] | None, chart: Path = CHART) -> list[dict[str, Any]]:
    """The objects ``chart`` renders with these user values (raises helm_python.HelmError)."""
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    with helm.Chart.load(str(chart)) as loaded:
        files = loaded.render(values, name=check.RELEASE, namespace=check.NAMESPACE)
    text = "\n---\n".join(body for path, body in sorted(files.items()) if path.endswith(".yaml"))
    return [o for o in check.load_objects(text) if isinstance(o, dict)]


def of_kind(profile: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in objects(profile) if o["kind"] == kind]


def name(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def pod_template(obj: dict[str, Any]) -> Any:
    if obj["kind"] == "Pod":
        return obj
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def pod_spec(obj: dict[str, Any]) -> Any:
    return pod_template(obj)["spec"]


def pod_labels(obj: dict[str, Any]) -> Any:
    return pod_template(obj)["metadata"].get("labels", {})


def containers(spec: dict[str, Any]) -> Any:
    return spec.get("initContainers", []) + spec.get("containers", [])


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    match = selector.get("matchLabels", {})
    return (
        bool(match)
        and all(labels.get(k) == v for k, v in match.items())
        and not selector.get("matchExpressions")
    )


def pod_owners(profile: str) -> list[dict[str, Any]]:
    return [o for o in objects(profile) if o["kind"] in POD_OWNERS]


def service_of(obj: dict[str, Any]) -> Any:
    return obj["metadata"]["labels"]["app.kubernetes.io/component"]


def grpc_deployments(profile: str) -> list[dict[str, Any]]:
    """The Deployments of the four gRPC services (the HTTP fronts left out)."""
    return [d for d in of_kind(profile, "Deployment") if service_of(d) in SERVICES]


def front_deployments(profile: str) -> list[dict[str, Any]]:
    """The Deployments of the HTTP fronts."""
    return [d for d in of_kind(profile, "Deployment") if service_of(d) in FRONTS]


def hooks(obj: dict[str, Any]) -> set[str]:
    value = obj["metadata"].get("annotations", {}).get("helm.sh/hook", "")
    return {h.strip() for h in value.split(",") if h.strip()}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def assert_restricted(owner: dict[str, Any]) -> None:
    """The restricted Pod Security Standard, and no service-account token, for one pod owner."""
    spec = pod_spec(owner)
    pod_sc = spec.get("securityContext", {})
    assert pod_sc.get("runAsNonRoot") is True, f"{name(owner)}: pod runAsNonRoot"
    assert spec.get("automountServiceAccountToken") is False, (
        f"{name(owner)}: automountServiceAccountToken"
    )
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(flag), f"{name(owner)}: {flag}"
    for c in containers(spec):
        where = f"{name(owner)} container {c['name']}"
        sc = c.get("securityContext", {})
        assert sc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot"
        for key in ("runAsUser", "runAsGroup"):
            value = sc.get(key, pod_sc.get(key))
            assert isinstance(value, int) and value > 0, f"{where}: numeric non-root {key}"
        assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
        assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
        assert sc.get("privileged") is not True, f"{where}: privileged"
        assert "ALL" in sc.get("capabilities", {}).get("drop", []), (
            f"{where}: capabilities drop ALL"
        )
        assert not sc.get("capabilities", {}).get("add"), f"{where}: capabilities add"
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
        assert seccomp.get("type") == "RuntimeDefault", f"{where}: seccompProfile RuntimeDefault"

#!/usr/bin/env python3
"""The chart check: the one command behind `make chart-check`.

    python tests/chart/check.py [--update-golden] [--chart DIR] [--golden-dir DIR] ...

Steps, in order (each one is reported; a failed step does not stop the independent ones):

  hadolint   hadolint on the Dockerfile (and any services/*/Dockerfile); notes a base
             image without a digest; every requirement of requirements/runtime-lock.txt
             carries a hash
  lint       Helm's own linter (the Go SDK through helm-python-sdk), strict, kube 1.30,
             once per profile; this also applies values.schema.json
  render     the chart rendered per profile into <out-dir>/<profile>.yaml
  validate   every rendered object against the Kubernetes 1.30 schemas, strict
  checkov    checkov on every rendered file; zero failed checks (skips are annotated
             on the objects, with a reason)
  golden     each render compared with <golden-dir>/<profile>.yaml (--update-golden rewrites)
  promises   pytest tests/chart/test_chart_promises.py and
             test_chart_page_tokens_and_people_sync.py over the rendered objects
  infra      infra/{keycloak,otel,postgres}/*.yaml: Kubernetes kinds validated like the
             chart's objects; custom resources (CloudNativePG) only parsed and listed
  realm      infra/keycloak/production-realm.json: no user but the clients' service
             accounts, no credential, no literal secret (only ${NAME} placeholders, each
             set by infra/keycloak/keycloak.yaml), and the same clients, roles, mappers
             and audiences as infra/keycloak/demo-realm.json
  self-test  pytest tests/chart/test_chart_check_fails.py: the check must fail on a
             broken copy of the chart

Exit status 0 only when no step failed. Needs the packages of tests/chart/requirements.txt
in the running interpreter, and checkov in its own virtualenv (env CHECKOV, default
.venv-checkov/bin/checkov).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

PROFILES: dict[str, str | None] = {
    "default": None,
    "minimal": "values-minimal.yaml",
    "production": "values-production.yaml",
}
RELEASE = "carenet"
NAMESPACE = "carenet"
KUBE_VERSION = "1.30.0"
PRODUCTION_REALM = REPO / "infra" / "keycloak" / "production-realm.json"
DEMO_REALM = REPO / "infra" / "keycloak" / "demo-realm.json"
KEYCLOAK_MANIFEST = REPO / "infra" / "keycloak" / "keycloak.yaml"


def _require_modules() -> None:
    missing = []
    for module in ("helm_python", "kubernetes_validate", "yaml", "pytest"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        sys.exit(
            f"missing Python packages: {', '.join(missing)}\n"
            f"install them with: {sys.executable} -m pip install -r tests/chart/requirements.txt"
        )


# --------------------------------------------------------------------------- rendering


def profile_values(chart: Path, profile: str) -> dict[str, Any] | None:
    """The user values of a profile (None for the chart defaults)."""
    import yaml  # type: ignore[import-untyped,unused-ignore]

    filename = PROFILES[profile]
    if filename is None:
        return None
    loaded = yaml.safe_load((chart / filename).read_text())
    return loaded or {}


def render_profile(chart: Path, profile: str) -> str:
    """Render one profile the way `helm template` would print it (NOTES.txt left out)."""
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    values = profile_values(chart, profile)
    with helm.Chart.load(str(chart)) as loaded:
        files = loaded.render(values, name=RELEASE, namespace=NAMESPACE)
    out: list[str] = []
    for path in sorted(files):
        if path.endswith("NOTES.txt"):
            continue
        for document in re.split(r"(?m)^---[ \t]*$", files[path]):
            body = "\n".join(line.rstrip() for line in document.strip("\n").splitlines())
            meaningful = [
                ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
            ]
            if meaningful:
                out.append(f"---\n# Source: {path}\n{body.strip()}\n")
    return "".join(out)


def load_objects(text: str) -> list[dict[str, Any]]:
    import yaml  # type: ignore[import-untyped,unused-ignore]

    return [doc for doc in yaml.safe_load_all(text) if doc]


# --------------------------------------------------------------------------- steps


@dataclass
class Step:
    name: str
    status: str = "pending"  # passed | failed | skipped
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, message: str) -> None:
        self.status = "failed"
        self.details.append(message)


@dataclass
class Context:
    chart: Path
    golden_dir: Path
    out_dir: Path
    profiles: list[str]
    update_golden: bool
    checkov: str
    production_realm: Path = PRODUCTION_REALM
    rendered: dict[str, str] = field(default_factory=dict)


def _base_images(dockerfile: Path) -> list[str]:
    """The images a Dockerfile's FROM lines name (ARG defaults filled in), leaving out
    earlier stages."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "ARG" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            args.setdefault(key, value)
        elif len(words) >= 2 and words[0] == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), words[1])
            if image not in stages:
                images.append(image)
            if len(words) == 4 and words[2].upper() == "AS":
                stages.add(words[3])
    return images


def _unhashed_requirements(lock: Path) -> list[str]:
    """Requirements of a pip lock file that carry no --hash."""
    missing = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text()):
        first = block.strip().splitlines()[0] if block.strip() else ""
        if "==" in first and "--hash=sha256:" not in block:
            missing.append(first.split()[0])
    return missing


def step_hadolint(ctx: Context, step: Step) -> None:
    dockerfiles = sorted([*REPO.glob("Dockerfile"), *REPO.glob("services/*/Dockerfile")])
    if not dockerfiles:
        step.fail("no Dockerfile found")
        return
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists() and not shutil.which(exe):
        step.fail("hadolint not found: pip install -r tests/chart/requirements.txt")
        return
    for dockerfile in dockerfiles:
        proc = subprocess.run(
            [exe, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
        )
        rel = dockerfile.relative_to(REPO)
        if proc.returncode != 0:
            step.fail(f"{rel}:\n{(proc.stdout + proc.stderr).strip()}")
        else:
            step.details.append(f"{rel}: clean")
        arg_of = {v: k for k, v in re.findall(r"(?m)^ARG (\w+)=(\S+)", dockerfile.read_text())}
        for image in sorted(set(_base_images(dockerfile))):
            if "@sha256:" not in image:
                step.details.append(
                    f"{rel}: base image {image} has no digest (pin it with --build-arg "
                    f"{arg_of.get(image, '<its build argument>')}={image}@sha256:<digest> "
                    "once verified)"
                )
    lock = REPO / "requirements" / "runtime-lock.txt"
    if not lock.exists():
        step.fail("requirements/runtime-lock.txt (the images' hash-pinned lock) is missing")
    elif missing := _unhashed_requirements(lock):
        step.fail(f"requirements/runtime-lock.txt: no hash for {', '.join(missing)}")
    else:
        step.details.append("requirements/runtime-lock.txt: every requirement hash-pinned")
    if lock.exists():
        for project, names in _unlocked_dependencies(lock).items():
            step.fail(
                f"requirements/runtime-lock.txt lacks {', '.join(names)} ({project} needs it)"
            )


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _unlocked_dependencies(lock: Path) -> dict[str, list[str]]:
    """Per package an image installs (proto, servicekit, every services/*), the third-party
    dependencies of its pyproject.toml that the lock does not pin."""
    import tomllib

    locked = {
        _canonical(m) for m in re.findall(r"(?m)^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read_text())
    }
    projects = [REPO / "proto", REPO / "libs" / "servicekit"]
    projects += sorted(p.parent for p in REPO.glob("services/*/pyproject.toml"))
    metadata = {p: tomllib.loads((p / "pyproject.toml").read_text())["project"] for p in projects}
    own = {_canonical(m["name"]) for m in metadata.values()}
    missing: dict[str, list[str]] = {}
    for path, project in metadata.items():
        for requirement in project.get("dependencies", []):
            name = _canonical(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])
            if name not in own and name not in locked:
                missing.setdefault(str(path.relative_to(REPO)), []).append(name)
    return missing


def step_lint(ctx: Context, step: Step) -> None:
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    for profile in ctx.profiles:
        try:
            report = helm.lint(
                str(ctx.chart),
                profile_values(ctx.chart, profile),
                strict=True,
                namespace=NAMESPACE,
                kube_version=f"v{KUBE_VERSION}",
            )
        except helm.HelmError as exc:
            step.fail(f"{profile}: {exc}")
            continue
        problems = [
            f"{m.get('path')}: {m.get('error')}"
            for m in report.get("messages", [])
            if m.get("severity", 0) >= 2
        ]
        problems += [str(e) for e in report.get("errors", []) or []]
        if problems:
            step.fail(f"{profile}:\n  " + "\n  ".join(dict.fromkeys(problems)))
        else:
            step.details.append(f"{profile}: clean")


def step_render(ctx: Context, step: Step) -> None:
    import helm_python as helm  # type: ignore[import-not-found,unused-ignore]

    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    for profile in ctx.profiles:
        target = ctx.out_dir / f"{profile}.yaml"
        try:
            text = render_profile(ctx.chart, profile)
        except helm.HelmError as exc:
            target.unlink(missing_ok=True)
            step.fail(f"{profile}: {exc}")
            continue
        target.write_text(text)
        ctx.rendered[profile] = text
        kinds: dict[str, int] = {}
        for obj in load_objects(text):
            kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        shown = target.relative_to(REPO) if target.is_relative_to(REPO) else target
        step.details.append(f"{profile}: {shown} ({summary})")


# Custom resources the chart may render (prometheus-operator, cert-manager, Gateway API).
CHART_CUSTOM_GROUPS = frozenset(
    {"monitoring.coreos.com", "cert-manager.io", "gateway.networking.k8s.io"}
)


def step_validate(ctx: Context, step: Step) -> None:
    from kubernetes_validate import utils as kv  # type: ignore[import-untyped,import-not-found,unused-ignore]

    for profile, text in ctx.rendered.items():
        count = 0
        custom = 0
        for obj in load_objects(text):
            label = f"{profile}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            if str(obj.get("apiVersion", "")).split("/")[0] in CHART_CUSTOM_GROUPS:
                custom += 1  # custom resources: no schema here, parsed only
                continue
            try:
                kv.validate(obj, KUBE_VERSION, strict=True)
                count += 1
            except kv.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                step.fail(f"{label}: {path}: {exc.message}")
            except (kv.SchemaNotFoundError, kv.InvalidSchemaError) as exc:
                step.fail(f"{label}: {exc.message}")
        step.details.append(
            f"{profile}: {count} objects valid against Kubernetes {KUBE_VERSION} (strict)"
            + (f", {custom} custom resources parsed only" if custom else "")
        )


def _checkov_reports(stdout: str) -> list[dict[str, Any]]:
    start = min((i for i in (stdout.find("{"), stdout.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise ValueError("checkov printed no JSON")
    data = json.loads(stdout[start:])
    return data if isinstance(data, list) else [data]


def step_checkov(ctx: Context, step: Step) -> None:
    exe = ctx.checkov
    if not (Path(exe).exists() or shutil.which(exe)):
        step.fail(
            f"checkov not found at {exe!r}. Create its own venv with:\n"
            "  python3 -m venv .venv-checkov\n"
            "  .venv-checkov/bin/pip install -r tests/chart/requirements-checkov.txt\n"
            "or point the CHECKOV environment variable at a checkov executable"
        )
        return
    files = [ctx.out_dir / f"{p}.yaml" for p in ctx.rendered]
    if not files:
        step.fail("nothing was rendered")
        return
    cmd = [exe]
    for f in files:
        cmd += ["-f", str(f)]
    cmd += ["--framework", "kubernetes", "--skip-download", "--compact", "-o", "json"]
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    try:
        reports = _checkov_reports(proc.stdout)
    except ValueError as exc:
        output = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        step.fail(f"could not read checkov's output ({exc}):\n{output}")
        return
    passed = failed = 0
    skips: dict[str, set[str]] = {}
    for report in reports:
        results = report.get("results", {})
        passed += len(results.get("passed_checks", []))
        for check in results.get("failed_checks", []):
            failed += 1
            step.fail(
                f"{check.get('check_id')} {check.get('check_name')}: "
                f"{Path(check.get('file_path', '')).name} {check.get('resource')}"
            )
        for check in results.get("skipped_checks", []):
            reason = check.get("check_result", {}).get("suppress_comment", "")
            skips.setdefault(f"{check.get('check_id')}: {reason}", set()).add(
                str(check.get("resource"))
            )
    if passed == 0 and failed == 0:
        step.fail(f"checkov checked nothing:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    if failed == 0 and proc.returncode not in (0, 1):
        step.fail(f"checkov exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    skipped = sum(len(r) for r in skips.values())
    step.details.append(f"{passed} passed, {failed} failed, {skipped} skipped by annotation")
    for skip, resources in sorted(skips.items()):
        step.details.append(f"skip {skip} ({len(resources)} objects)")


def step_golden(ctx: Context, step: Step) -> None:
    ctx.golden_dir.mkdir(parents=True, exist_ok=True)
    for profile, text in ctx.rendered.items():
        golden = ctx.golden_dir / f"{profile}.yaml"
        if ctx.update_golden:
            golden.write_text(text)
            step.details.append(f"{profile}: rewrote {golden}")
            continue
        if not golden.exists():
            step.fail(f"{profile}: {golden} does not exist; run with --update-golden")
            continue
        expected = golden.read_text()
        if expected == text:
            step.details.append(f"{profile}: matches {golden.name}")
            continue
        diff = list(
            difflib.unified_diff(
                expected.splitlines(),
                text.splitlines(),
                f"golden/{profile}.yaml",
                f"rendered/{profile}.yaml",
                lineterm="",
            )
        )
        shown = "\n".join(diff[:80]) + ("\n... (diff cut)" if len(diff) > 80 else "")
        step.fail(
            f"{profile}: the render differs from {golden}. If the change is intended, run "
            f"`python tests/chart/check.py --update-golden` and review the diff.\n{shown}"
        )


# Custom resources in infra/ that no Kubernetes schema covers (their operators validate them).
INFRA_CUSTOM_KINDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "Database"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("barmancloud.cnpg.io/v1", "ObjectStore"),
}


def step_infra(ctx: Context, step: Step) -> None:
    from kubernetes_validate import utils as kv  # type: ignore[import-untyped,import-not-found,unused-ignore]

    files = sorted(REPO.glob("infra/keycloak/*.yaml")) + sorted(REPO.glob("infra/otel/*.yaml"))
    files += sorted(REPO.glob("infra/postgres/*.yaml"))
    if not files:
        step.fail("no manifests under infra/")
        return
    for path in files:
        rel = path.relative_to(REPO)
        try:
            docs = load_objects(path.read_text())
        except Exception as exc:  # a YAML error is the finding
            step.fail(f"{rel}: {exc}")
            continue
        checked, custom = 0, []
        for obj in docs:
            label = f"{rel}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            if not obj.get("metadata", {}).get("namespace"):
                step.fail(f"{label}: no metadata.namespace")
            if (obj.get("apiVersion"), obj.get("kind")) in INFRA_CUSTOM_KINDS:
                custom.append(obj["kind"])
                continue
            try:
                kv.validate(obj, KUBE_VERSION, strict=True)
                checked += 1
            except kv.ValidationError as exc:
                step.fail(f"{label}: {'.'.join(str(p) for p in exc.path)}: {exc.message}")
            except (kv.SchemaNotFoundError, kv.InvalidSchemaError) as exc:
                step.fail(f"{label}: {exc.message}")
        note = f", custom resources not schema-checked: {', '.join(custom)}" if custom else ""
        step.details.append(f"{rel}: {checked} objects valid{note}")


# --------------------------------------------------------------------------- realm

# Filled by Keycloak from its environment at import; no default (`${NAME:default}` is a literal).
PLACEHOLDER = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)\}$")
PLACEHOLDER_ANYWHERE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::[^}]*)?\}")
# Keys whose string values are secrets: `secret`, `clientSecret`, `bindCredential`,
# `keystorePassword`, `privateKey`, ... (`passwordPolicy` and the like are not).
SECRET_KEY = re.compile(r"(secret|password|credential|private_?key)$", re.IGNORECASE)


def _literal_secrets(node: Any, path: str = "") -> list[str]:
    """Paths of secret-named keys whose value is not exactly one ${NAME} placeholder."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if SECRET_KEY.search(str(key)):
                values = value if isinstance(value, list) else [value]
                if any(isinstance(v, str) and not PLACEHOLDER.match(v) for v in values):
                    found.append(here)
                    continue
            found += _literal_secrets(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            label = index
            if isinstance(value, dict):
                label = (
                    value.get("clientId") or value.get("username") or value.get("alias") or index
                )
            found += _literal_secrets(value, f"{path}[{label}]")
    return found


def _without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}


# Where a browser client may be sent back to is a fact of the deployment (its public URL),
# not of the realm: the demo realm names http://127.0.0.1:8000, the production realm
# ${CARENET_WEB_URL} (set by the Keycloak manifest, like the secrets). Both compare without.
DEPLOYMENT_CLIENT_KEYS = ("secret", "redirectUris", "webOrigins", "rootUrl", "baseUrl")
DEPLOYMENT_CLIENT_ATTRIBUTES = ("post.logout.redirect.uris",)


def _comparable_client(client: dict[str, Any]) -> dict[str, Any]:
    out = _without(client, *DEPLOYMENT_CLIENT_KEYS)
    if isinstance(out.get("attributes"), dict):
        out["attributes"] = _without(out["attributes"], *DEPLOYMENT_CLIENT_ATTRIBUTES)
    return out


def realm_problems(
    production: dict[str, Any], demo: dict[str, Any], manifest_env: set[str]
) -> list[str]:
    """What makes ``production`` unfit to import: people, credentials, literal secrets,
    placeholders the Keycloak manifest does not set, drift from the demo realm."""
    problems: list[str] = []
    clients = {c.get("clientId"): c for c in production.get("clients", [])}
    with_accounts = {cid for cid, c in clients.items() if c.get("serviceAccountsEnabled")}
    for user in production.get("users", []):
        name = user.get("username", "?")
        owner = user.get("serviceAccountClientId")
        if not owner:
            problems.append(f"holds the user {name!r}: a production realm holds no people")
        elif owner not in with_accounts:
            problems.append(f"user {name!r} is the service account of no client with one")
        if user.get("credentials"):
            problems.append(f"user {name!r} has credentials")
        if user.get("federatedIdentities"):
            problems.append(f"user {name!r} has federated identities")
    problems += [f"literal secret at {path}" for path in _literal_secrets(production)]
    missing = sorted(set(PLACEHOLDER_ANYWHERE.findall(json.dumps(production))) - manifest_env)
    problems += [f"placeholder ${{{name}}} is not set by the Keycloak manifest" for name in missing]

    # The same realm as the demo one, less its people and its secrets.
    if production.get("realm") != demo.get("realm"):
        problems.append(f"realm name {production.get('realm')!r} is not {demo.get('realm')!r}")
    if production.get("roles") != demo.get("roles"):
        problems.append("realm roles differ from the demo realm's")
    demo_clients = {c.get("clientId"): c for c in demo.get("clients", [])}
    if set(clients) != set(demo_clients):
        problems.append(
            f"clients differ from the demo realm's: {sorted(set(clients) ^ set(demo_clients))}"
        )
    for cid in sorted(set(clients) & set(demo_clients)):
        if _comparable_client(clients[cid]) != _comparable_client(demo_clients[cid]):
            problems.append(f"client {cid!r} differs from the demo realm's (beyond its secret)")

    def accounts(realm: dict[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
        return {
            u["serviceAccountClientId"]: (
                sorted(u.get("realmRoles", [])),
                sorted(u.get("attributes", {})),
            )
            for u in realm.get("users", [])
            if u.get("serviceAccountClientId")
        }

    if accounts(production) != accounts(demo):
        problems.append("service accounts' roles or attributes differ from the demo realm's")
    others = ("users", "clients", "roles", "id")
    if _without(production, *others) != _without(demo, *others):
        problems.append("realm settings differ from the demo realm's")
    return problems


def keycloak_env(manifest: Path) -> set[str]:
    """The environment variables the Keycloak container of ``manifest`` sets."""
    names: set[str] = set()
    for obj in load_objects(manifest.read_text()):
        if obj.get("kind") != "Deployment":
            continue
        for container in obj["spec"]["template"]["spec"].get("containers", []):
            names |= {e["name"] for e in container.get("env", [])}
    return names


# The production path: none of these may name the demo realm.
DEPLOY_GUIDE = REPO / "docs" / "deploy.md"
PRODUCTION_PATH_FILES = (DEPLOY_GUIDE, KEYCLOAK_MANIFEST)
REALM_SECRET = "carenet-realm-client-secrets"
REALM_CONFIGMAP = "carenet-realm-organisations"


def keycloak_refs(manifest: Path) -> dict[str, set[str]]:
    """Per Secret or ConfigMap the Keycloak container reads, the keys it reads."""
    refs: dict[str, set[str]] = {}
    for obj in load_objects(manifest.read_text()):
        if obj.get("kind") != "Deployment":
            continue
        for container in obj["spec"]["template"]["spec"].get("containers", []):
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                for kind in ("secretKeyRef", "configMapKeyRef"):
                    if kind in source:
                        refs.setdefault(source[kind]["name"], set()).add(source[kind]["key"])
    return refs


def deploy_guide_problems(guide: str, refs: dict[str, set[str]], chart: Path) -> list[str]:
    """Where the deploy guide's commands miss what Keycloak's manifest and the chart read: the
    realm's client secrets (each `clients="..."` list), the organisations ConfigMap's keys, its
    web-url against web.publicUrl, and the web front's two Secrets."""
    import yaml  # type: ignore[import-untyped,unused-ignore]

    problems = []
    lists = [set(m.split()) for m in re.findall(r'(?m)^clients="([^"]*)"', guide)]
    if not lists:
        problems.append(f'no clients="..." list creates {REALM_SECRET}')
    for found in lists:
        if found != refs.get(REALM_SECRET, set()):
            missing = sorted(refs.get(REALM_SECRET, set()) - found)
            extra = sorted(found - refs.get(REALM_SECRET, set()))
            problems.append(f"clients list of {REALM_SECRET}: missing {missing}, extra {extra}")
    command = re.search(rf"create configmap {REALM_CONFIGMAP}((?:[^\n]*\\\n)*[^\n]*)", guide)
    literals = (
        dict(re.findall(r"--from-literal=([\w-]+)=(\S+)", command.group(1))) if command else {}
    )
    if set(literals) != refs.get(REALM_CONFIGMAP, set()):
        problems.append(
            f"{REALM_CONFIGMAP}: the guide sets {sorted(literals)}, Keycloak reads "
            f"{sorted(refs.get(REALM_CONFIGMAP, set()))}"
        )
    web = yaml.safe_load((chart / "values.yaml").read_text()).get("web", {})
    if "web-url" in literals and literals["web-url"] != web.get("publicUrl"):
        problems.append(
            f"web-url {literals['web-url']} is not web.publicUrl {web.get('publicUrl')}"
        )
    for secret in (web.get("oidc", {}).get("clientSecret", {}), web.get("secretKey", {})):
        name, key = secret.get("existingSecret"), secret.get("key")
        if name and not re.search(
            rf"create secret generic {re.escape(name)}\s[^\n]*--from-literal={re.escape(key)}=",
            guide.replace("\\\n", " "),
        ):
            problems.append(f"no command creates the Secret {name} (key {key})")
    return problems


def step_realm(ctx: Context, step: Step) -> None:
    production = json.loads(ctx.production_realm.read_text())
    demo = json.loads(DEMO_REALM.read_text())
    problems = realm_problems(production, demo, keycloak_env(KEYCLOAK_MANIFEST))
    guide = DEPLOY_GUIDE.read_text()
    guide_problems = deploy_guide_problems(guide, keycloak_refs(KEYCLOAK_MANIFEST), ctx.chart)
    for problem in guide_problems:
        step.fail(f"{DEPLOY_GUIDE.relative_to(REPO)}: {problem}")
    if not guide_problems:
        step.details.append(
            f"{DEPLOY_GUIDE.relative_to(REPO)}: creates every key of {REALM_SECRET} and "
            f"{REALM_CONFIGMAP} that {KEYCLOAK_MANIFEST.relative_to(REPO)} reads, and the web "
            "front's Secrets"
        )
    for path in PRODUCTION_PATH_FILES:
        if DEMO_REALM.name in path.read_text():
            step.fail(
                f"{path.relative_to(REPO)} names {DEMO_REALM.name}: deploy the production realm"
            )
    shown = (
        ctx.production_realm.relative_to(REPO)
        if ctx.production_realm.is_relative_to(REPO)
        else ctx.production_realm
    )
    for problem in problems:
        step.fail(f"{shown}: {problem}")
    if not problems:
        users = len(production.get("users", []))
        step.details.append(
            f"{shown}: no people, no literal secrets ({users} service accounts), "
            "same clients, roles and mappers as the demo realm"
        )


def _pytest(step: Step, test_files: list[Path], env: dict[str, str]) -> None:
    proc = subprocess.run(
        # --confcutdir: the chart tests need none of the repository-wide fixtures (root conftest.py)
        [
            sys.executable,
            "-m",
            "pytest",
            *(str(f) for f in test_files),
            "-q",
            "--no-header",
            "-p",
            "no:cacheprovider",
            "--confcutdir",
            str(HERE),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env=env,
    )
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    if proc.returncode != 0:
        step.fail("\n".join(tail[-60:]))
    else:
        step.details.append(tail[-1] if tail else "passed")


def step_promises(ctx: Context, step: Step) -> None:
    if set(ctx.rendered) != set(ctx.profiles):
        step.fail("not every profile rendered")
        return
    env = dict(os.environ, CARENET_CHART_RENDER_DIR=str(ctx.out_dir))
    promises = ["test_chart_promises.py", "test_chart_page_tokens_and_people_sync.py"]
    _pytest(step, [HERE / f for f in promises], env)


def step_self_test(ctx: Context, step: Step) -> None:
    _pytest(step, [HERE / "test_chart_check_fails.py"], dict(os.environ))
    _pytest(step, [HERE / "test_realm_check.py"], dict(os.environ))


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--chart", type=Path, default=REPO / "charts" / "carenet", help="chart directory"
    )
    parser.add_argument(
        "--golden-dir", type=Path, default=None, help="golden files (default: <chart>/golden)"
    )
    parser.add_argument(
        "--out-dir", type=Path, default=REPO / "build" / "chart", help="where renders are written"
    )
    parser.add_argument(
        "--update-golden", action="store_true", help="rewrite the golden files from the render"
    )
    parser.add_argument(
        "--profile", action="append", choices=sorted(PROFILES), help="only these profiles"
    )
    parser.add_argument("--skip-checkov", action="store_true", help="leave out the checkov step")
    parser.add_argument("--skip-hadolint", action="store_true", help="leave out the hadolint step")
    parser.add_argument(
        "--skip-infra", action="store_true", help="leave out the infra manifests step"
    )
    parser.add_argument(
        "--skip-self-test", action="store_true", help="leave out the negative self-test"
    )
    parser.add_argument(
        "--production-realm",
        type=Path,
        default=PRODUCTION_REALM,
        help="the production realm export to check (default: infra/keycloak/production-realm.json)",
    )
    parser.add_argument("--report", type=Path, help="write the step results as JSON to this file")
    args = parser.parse_args(argv)

    _require_modules()
    chart = args.chart.resolve()
    checkov = os.environ.get("CHECKOV", str(REPO / ".venv-checkov" / "bin" / "checkov"))
    ctx = Context(
        chart=chart,
        golden_dir=(args.golden_dir or chart / "golden").resolve(),
        out_dir=args.out_dir.resolve(),
        profiles=args.profile or list(PROFILES),
        update_golden=args.update_golden,
        checkov=checkov,
        production_realm=args.production_realm.resolve(),
    )

    plan: list[tuple[str, Callable[[Context, Step], None], bool, bool]] = [
        # name, function, skipped by flag, needs the renders
        ("hadolint", step_hadolint, args.skip_hadolint, False),
        ("lint", step_lint, False, False),
        ("render", step_render, False, False),
        ("validate", step_validate, False, True),
        ("checkov", step_checkov, args.skip_checkov, True),
        ("golden", step_golden, False, True),
        ("promises", step_promises, False, True),
        ("infra", step_infra, args.skip_infra, False),
        ("realm", step_realm, False, False),
        ("self-test", step_self_test, args.skip_self_test, False),
    ]
    steps: list[Step] = []
    started = time.monotonic()
    for name, function, skipped, needs_render in plan:
        step = Step(name)
        steps.append(step)
        if skipped:
            step.status = "skipped"
            step.details.append("skipped by flag")
        elif needs_render and not ctx.rendered:
            step.status = "skipped"
            step.details.append("nothing rendered")
        else:
            print(f"==> {name}", flush=True)
            t0 = time.monotonic()
            try:
                function(ctx, step)
            except Exception as exc:  # a crash in a step is a failed step, reported like the others
                step.fail(f"{type(exc).__name__}: {exc}")
            step.seconds = time.monotonic() - t0
            if step.status == "pending":
                step.status = "passed"
        for line in step.details:
            print("    " + line.replace("\n", "\n    "))
    total = time.monotonic() - started

    print("\nchart check summary")
    for step in steps:
        print(f"  {step.name:<10} {step.status:<8} {step.seconds:6.1f}s")
    failed_steps = [s for s in steps if s.status == "failed"]
    passed_steps = [s for s in steps if s.status == "passed"]
    skipped_steps = [s for s in steps if s.status == "skipped"]
    print(f"  total      {total:.1f}s")
    counts = f"{len(passed_steps)} passed, {len(failed_steps)} failed, {len(skipped_steps)} skipped"
    print(f"check: {counts}")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(
            json.dumps(
                {
                    "ok": not failed_steps,
                    "steps": [
                        {
                            "name": s.name,
                            "status": s.status,
                            "seconds": round(s.seconds, 2),
                            "details": s.details,
                        }
                        for s in steps
                    ],
                },
                indent=2,
            )
        )
    return 1 if failed_steps else 0


if __name__ == "__main__":
    sys.exit(main())

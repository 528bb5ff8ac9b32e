"""The chart check's realm step must fail on a production realm that holds people, credentials
or literal secrets, or has drifted from the demo realm.

Most cases call the step's own function (``realm_problems``) on an edited copy of
infra/keycloak/production-realm.json; one runs check.py as a process on a bad realm file and
asserts that the ``realm`` step failed the check.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("carenet_chart_check", HERE / "check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


check = _load_check()
PRODUCTION: dict[str, Any] = json.loads(check.PRODUCTION_REALM.read_text())
DEMO: dict[str, Any] = json.loads(check.DEMO_REALM.read_text())
MANIFEST_ENV: set[str] = check.keycloak_env(check.KEYCLOAK_MANIFEST)


def problems(realm: dict[str, Any]) -> list[str]:
    found: list[str] = check.realm_problems(realm, DEMO, MANIFEST_ENV)
    return found


def client(realm: dict[str, Any], client_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in realm["clients"] if c["clientId"] == client_id)
    return found


def account(realm: dict[str, Any], client_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        u for u in realm["users"] if u.get("serviceAccountClientId") == client_id
    )
    return found


def test_the_production_realm_passes() -> None:
    assert problems(PRODUCTION) == []
    assert all(u.get("serviceAccountClientId") for u in PRODUCTION["users"])


def test_the_demo_realm_fails() -> None:
    found = problems(DEMO)
    assert any("holds the user 'dr.jansen'" in p for p in found)
    assert any("literal secret at clients[carenet-kis].secret" in p for p in found)


def _add_person(realm: dict[str, Any]) -> None:
    realm["users"].append(
        {"username": "admin.prod", "enabled": True, "realmRoles": ["care-group-admin"]}
    )


def _credentials_on_a_service_account(realm: dict[str, Any]) -> None:
    account(realm, "svc-referral")["credentials"] = [{"type": "password", "value": "x"}]


def _literal_client_secret(realm: dict[str, Any]) -> None:
    client(realm, "svc-careplan")["secret"] = "svc-careplan-secret"


def _placeholder_with_a_default(realm: dict[str, Any]) -> None:
    client(realm, "carenet-kis")["secret"] = "${CARENET_KIS_CLIENT_SECRET:carenet-kis-secret}"


def _empty_client_secret(realm: dict[str, Any]) -> None:
    client(realm, "carenet-insurer")["secret"] = ""


def _identity_provider_secret(realm: dict[str, Any]) -> None:
    realm["identityProviders"] = [
        {"alias": "uzi", "providerId": "oidc", "config": {"clientSecret": "s3cr3t"}}
    ]


def _private_key_component(realm: dict[str, Any]) -> None:
    realm["components"]["org.keycloak.keys.KeyProvider"] = [
        {"name": "rsa", "providerId": "rsa", "config": {"privateKey": ["MIIEvQIBADANBg"]}}
    ]


def _smtp_password(realm: dict[str, Any]) -> None:
    realm["smtpServer"] = {"host": "smtp.example.org", "password": "hunter2"}


def _placeholder_the_manifest_does_not_set(realm: dict[str, Any]) -> None:
    client(realm, "svc-outcomes")["secret"] = "${SVC_OUTCOMES_SECRET_TYPO}"


def _orphan_service_account(realm: dict[str, Any]) -> None:
    account(realm, "carenet-insurer")["serviceAccountClientId"] = "no-such-client"


def _client_dropped(realm: dict[str, Any]) -> None:
    realm["clients"] = [c for c in realm["clients"] if c["clientId"] != "svc-outcomes"]


def _mapper_dropped(realm: dict[str, Any]) -> None:
    client(realm, "carenet-kis")["protocolMappers"].pop()


def _role_given_away(realm: dict[str, Any]) -> None:
    account(realm, "carenet-provider")["realmRoles"].append("delegate")


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (_add_person, "holds the user 'admin.prod'"),
        (_credentials_on_a_service_account, "has credentials"),
        (_literal_client_secret, "literal secret at clients[svc-careplan].secret"),
        (_placeholder_with_a_default, "literal secret at clients[carenet-kis].secret"),
        (_empty_client_secret, "literal secret at clients[carenet-insurer].secret"),
        (_identity_provider_secret, "literal secret at identityProviders[uzi].config.clientSecret"),
        (_private_key_component, "privateKey"),
        (_smtp_password, "literal secret at smtpServer.password"),
        (_placeholder_the_manifest_does_not_set, "${SVC_OUTCOMES_SECRET_TYPO} is not set"),
        (_orphan_service_account, "service account of no client"),
        (_client_dropped, "clients differ"),
        (_mapper_dropped, "client 'carenet-kis' differs"),
        (_role_given_away, "service accounts' roles"),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else "",
)
def test_a_broken_production_realm_fails(
    breakage: Callable[[dict[str, Any]], None], expected: str
) -> None:
    realm = copy.deepcopy(PRODUCTION)
    breakage(realm)
    found = problems(realm)
    assert any(expected in p for p in found), found


@pytest.mark.slow
def test_the_check_fails_on_a_production_realm_with_a_user(tmp_path: Path) -> None:
    realm = copy.deepcopy(PRODUCTION)
    _add_person(realm)
    bad = tmp_path / "production-realm.json"
    bad.write_text(json.dumps(realm))
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "check.py"),
            "--production-realm",
            str(bad),
            "--out-dir",
            str(tmp_path / "out"),
            "--report",
            str(report),
            "--skip-checkov",
            "--skip-hadolint",
            "--skip-infra",
            "--skip-self-test",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    steps = {s["name"]: s for s in json.loads(report.read_text())["steps"]}
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert steps["realm"]["status"] == "failed"
    assert any("admin.prod" in d for d in steps["realm"]["details"])
    assert {n for n, s in steps.items() if s["status"] == "failed"} == {"realm"}


# --------------------------------------------------------------------------- the deploy guide

GUIDE = check.DEPLOY_GUIDE.read_text()
REFS = check.keycloak_refs(check.KEYCLOAK_MANIFEST)
CHART = REPO / "charts" / "carenet"


def test_the_deploy_guide_creates_every_key_keycloak_and_the_web_front_read() -> None:
    assert "carenet-web" in REFS[check.REALM_SECRET]
    assert "web-url" in REFS[check.REALM_CONFIGMAP]
    assert check.deploy_guide_problems(GUIDE, REFS, CHART) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (" carenet-web svc-referral", " svc-referral", "missing ['carenet-web']"),
        (" --from-literal=web-url=https://zorg.carenet.example", "", "Keycloak reads"),
        ("web-url=https://zorg.carenet.example", "web-url=https://elders.example", "web.publicUrl"),
        ("generic carenet-web-secret-key", "generic carenet-web-key", "carenet-web-secret-key"),
        ("generic carenet-web-oidc ", "generic carenet-web-client ", "carenet-web-oidc"),
    ],
)
def test_the_check_names_what_the_deploy_guide_misses(old: str, new: str, expected: str) -> None:
    assert old in GUIDE
    problems = check.deploy_guide_problems(GUIDE.replace(old, new), REFS, CHART)
    assert any(expected in p for p in problems), problems


# --------------------------------------------------------------------------- the images' lock


def test_the_lock_pins_every_dependency_of_every_image_package_web_and_fhir_included(
    tmp_path: Path,
) -> None:
    lock = REPO / "requirements" / "runtime-lock.txt"
    assert check._unlocked_dependencies(lock) == {}
    text = lock.read_text()
    for name, needed_by in (("gunicorn", {"services/web", "services/fhir"}), ("authlib", None)):
        broken = tmp_path / f"{name}.txt"
        broken.write_text(re.sub(rf"(?mi)^{name}==", f"{name}-gone==", text))
        missing = check._unlocked_dependencies(broken)
        assert {p for p, names in missing.items() if name in names} == (
            needed_by or {"services/web"}
        )

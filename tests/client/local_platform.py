"""The whole platform as ``make run`` starts it (every service migrated, seeded with the demo
data by its own ``seed-demo`` and started as a process, identity with its access-log keys),
but on free ports, on databases of its own on the tests' PostgreSQL, with an issuer the
caller already runs: for the client tests and the guides' tests.

Migrating and seeding take most of a start, so they happen once per test session into
template databases (:func:`demo_template`); every platform after that is a copy
(``CREATE DATABASE ... TEMPLATE``) of the demo data as it stands after start-up, started in
a few seconds.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from testkit.database import create_database, drop_database
from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess

REPO = Path(__file__).resolve().parents[2]


def run_local() -> ModuleType:
    """scripts/run_local.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "carenet_run_local", REPO / "scripts" / "run_local.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


GRPC_SERVICES = ("identity", "referral", "careplan", "outcomes")


def grpc_services(script: ModuleType) -> list[str]:
    """The gRPC services make run starts, in its order (HTTP fronts such as web are not part
    of the API the clients and guides use)."""
    return [name for name in script.services() if name in GRPC_SERVICES]


@dataclass
class Platform:
    issuer: str
    ports: dict[str, int]
    run_dir: Path
    databases: dict[str, str]
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def target(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    @property
    def targets(self) -> dict[str, str]:
        return {name: self.target(name) for name in self.ports}


@dataclass(frozen=True)
class Template:
    run_dir: Path
    databases: dict[str, str]


def env_for(
    script: ModuleType, name: str, database: str, run_dir: Path, issuer: str, ports: dict[str, int]
) -> dict[str, str]:
    """The environment ``make run`` gives a service (see scripts/run_local.py)."""
    prefix = name.upper()
    env = {
        f"{prefix}_DATABASE_URL": database,
        f"{prefix}_OIDC_ISSUER": issuer,
        f"{prefix}_GRPC_HOST": "127.0.0.1",
        f"{prefix}_GRPC_PORT": str(ports[name]),
        f"{prefix}_OIDC_CLIENT_ID": f"svc-{name}",
        f"{prefix}_OIDC_CLIENT_SECRET": f"svc-{name}-secret",
        "IDENTITY_BSN_PEPPER": script.DEMO_PEPPER,
    }
    for other, port in ports.items():
        if other != name:
            env[f"{prefix}_{other.upper()}_TARGET"] = f"127.0.0.1:{port}"
    if name == "identity":
        env |= script.access_log_env(run_dir)
    return env


def copy_database(template: str) -> str:
    parsed = make_url(template)
    name = f"{parsed.database}_c{uuid.uuid4().hex[:6]}"
    admin = parsed.set(database="postgres", drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"')
    return parsed.set(database=name).render_as_string(hide_password=False)


@contextmanager
def running_platform(
    idp: LocalIdp,
    run_dir: Path,
    template: Template | None = None,
    *,
    databases: dict[str, str] | None = None,
) -> Iterator[Platform]:
    """Every service on free ports: over a copy of ``template`` when given (fresh demo data
    without migrating and seeding again), else migrated and seeded here into ``databases``
    (the caller's, kept) or into new databases dropped at the end."""
    script = run_local()
    names = grpc_services(script)
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    with ExitStack() as stack:
        if template is not None:
            shutil.copytree(template.run_dir, run_dir)
            databases = {}
            for name in names:
                databases[name] = copy_database(template.databases[name])
                stack.callback(drop_database, databases[name])
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
            if databases is None:
                databases = {}
                for name in names:
                    databases[name] = create_database(f"demo_{name}")
                    stack.callback(drop_database, databases[name])
        platform = Platform(idp.issuer, ports, run_dir, databases)
        seeded: dict[str, dict[str, str]] = {}
        for name in names:
            env = env_for(script, name, databases[name], run_dir, idp.issuer, ports)
            if template is None:
                script.cli(name, "migrate", env)
                seeded[name] = script.cli(name, "seed-demo", env, *script.seed_args(name, seeded))
            process = ServiceProcess(name, env).start(timeout=90)
            stack.callback(_stop, platform, name)
            platform.processes[name] = process
        yield platform


def _stop(platform: Platform, name: str) -> None:
    # the current process of the service: a test may have restarted it
    platform.processes[name].stop()


_templates: dict[str, Template] = {}


def demo_template(idp: LocalIdp, factory: Any) -> Template:
    """Everything ``make run`` does before it waits (migrate, seed, start: start-up work such
    as careplan following the demo referral happens), then the services stop; once per issuer
    and test session, dropped when the process exits."""
    if idp.issuer not in _templates:
        import atexit

        folder: Path = factory.mktemp("demo-platform") / "template"
        databases = {n: create_database(f"demo_{n}") for n in grpc_services(run_local())}
        for url in databases.values():
            atexit.register(drop_database, url)  # also when seeding fails
        with running_platform(idp, folder, databases=databases):
            pass
        _templates[idp.issuer] = Template(folder, databases)
    return _templates[idp.issuer]

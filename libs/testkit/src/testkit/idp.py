"""Start the local OIDC issuer (``infra/local-idp``) for tests and local runs.

The issuer serves the carenet Keycloak realm export at Keycloak's URL layout, so services and
tests talk to it exactly as they would to Keycloak::

    with LocalIdp.start(keys_file=tmp_path / "jwks.json") as idp:
        token = idp.client_token("svc-referral")
        user_token = idp.password_token("carenet-kis", "dr.jansen")

``keys_file`` is a plain JWK set of *private* keys (one ``use: sig`` RS256 key and one
``use: enc`` RSA-OAEP key); the issuer creates it when it does not exist, and tests may read it
to forge tokens.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from keycloak import KeycloakOpenID

__all__ = ["LocalIdp", "LocalIdpError", "ensure_node_modules", "repo_root"]

LISTENING_PREFIX = "carenet-local-idp listening issuer="
_IDP_DIR = Path("infra") / "local-idp"
_DEFAULT_REALM_FILE = Path("infra") / "keycloak" / "demo-realm.json"


class LocalIdpError(RuntimeError):
    """The local issuer could not be prepared or started."""


def repo_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder above ``start`` that holds ``infra/local-idp``.

    Without ``start``, looks above this file first (editable install, PYTHONPATH) and then
    above the current directory (testkit installed into a virtualenv).
    """
    starts = [start] if start is not None else [Path(__file__), Path.cwd()]
    for origin in starts:
        here = origin.resolve()
        for folder in (here, *here.parents):
            if (folder / _IDP_DIR / "server.mjs").is_file():
                return folder
    raise LocalIdpError(f"no folder holding {_IDP_DIR}/server.mjs above {starts}")


def _which(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise LocalIdpError(f"{program} is not on PATH; the local issuer needs Node.js 20 or later")
    return found


def ensure_node_modules(idp_dir: Path | None = None) -> None:
    """Run ``npm ci`` in ``infra/local-idp`` when node_modules is missing or older than the lock.

    Serialised with a file lock, so parallel test workers do not run npm at the same time.
    """
    folder = (idp_dir or repo_root() / _IDP_DIR).resolve()
    lock_name = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"carenet-local-idp-npm-{lock_name}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _node_modules_fresh(folder):
            return
        result = subprocess.run(
            [_which("npm"), "ci", "--no-audit", "--no-fund"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LocalIdpError(
                f"npm ci in {folder} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )


def _node_modules_fresh(folder: Path) -> bool:
    modules = folder / "node_modules"
    if not modules.is_dir():
        return False
    # npm rewrites its hidden lockfile on every install; the folder's own mtime is the fallback
    marker = modules / ".package-lock.json"
    installed = (marker if marker.is_file() else modules).stat().st_mtime
    return installed >= (folder / "package-lock.json").stat().st_mtime


class LocalIdp:
    """A running ``infra/local-idp`` process. Create it with :meth:`start`."""

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        issuer: str,
        keys_file: Path,
        realm_file: Path,
        workdir: Path,
    ) -> None:
        self.process = process
        self.issuer = issuer
        self.keys_file = keys_file
        self.realm_file = realm_file
        self._workdir = workdir
        base, sep, realm = issuer.rpartition("/realms/")
        if not sep:
            raise LocalIdpError(f"issuer {issuer!r} is not a Keycloak realm URL")
        self.realm_name = realm
        #: what python-keycloak calls server_url: the issuer minus /realms/<realm>, with a slash
        self.server_url = f"{base}/"
        self.token_url = f"{issuer}/protocol/openid-connect/token"
        self.jwks_url = f"{issuer}/protocol/openid-connect/certs"
        self.discovery_url = f"{issuer}/.well-known/openid-configuration"

    @classmethod
    def start(
        cls,
        keys_file: Path,
        realm_file: Path | None = None,
        extra_users: list[dict[str, Any]] | None = None,
        ttl_seconds: int = 300,
        *,
        startup_timeout: float = 20.0,
        port: int = 0,
    ) -> LocalIdp:
        """Start ``node infra/local-idp/server.mjs`` on a free port and wait until it listens.

        ``extra_users`` are Keycloak user representations (as in the realm export's ``users``)
        added for this run, e.g. ``{"username": "t.user", "realmRoles": ["gp"],
        "attributes": {"carenet_org": ["gp-x"]}, "credentials": [{"type": "password",
        "value": "pw"}]}``.
        """
        root = repo_root()
        idp_dir = root / _IDP_DIR
        ensure_node_modules(idp_dir)
        realm = (realm_file or root / _DEFAULT_REALM_FILE).resolve()
        keys = keys_file.resolve()
        workdir = Path(tempfile.mkdtemp(prefix="carenet-local-idp-"))

        env = {
            **os.environ,
            "IDP_PORT": str(port),
            "IDP_HOST": "127.0.0.1",
            "IDP_REALM_FILE": str(realm),
            "IDP_KEYS_FILE": str(keys),
            "IDP_TOKEN_TTL_SECONDS": str(ttl_seconds),
        }
        env.pop("IDP_PUBLIC_URL", None)
        env.pop("IDP_EXTRA_USERS_FILE", None)
        if extra_users is not None:
            users_file = workdir / "extra-users.json"
            users_file.write_text(json.dumps(extra_users))
            env["IDP_EXTRA_USERS_FILE"] = str(users_file)

        stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            # files, not pipes: nobody has to drain them, so the child never blocks on output
            process = subprocess.Popen(
                [_which("node"), str(idp_dir / "server.mjs")],
                cwd=idp_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        try:
            issuer = _wait_for_issuer(process, stdout_path, stderr_path, startup_timeout)
        except BaseException:
            _terminate(process)
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return cls(
            process=process, issuer=issuer, keys_file=keys, realm_file=realm, workdir=workdir
        )

    # ------------------------------------------------------------------ tokens

    def keycloak_openid(self, client_id: str, secret: str | None = None) -> KeycloakOpenID:
        """A python-keycloak client for this issuer.

        ``secret`` defaults to the demo convention ``<clientId>-secret``.
        """
        return KeycloakOpenID(
            server_url=self.server_url,
            realm_name=self.realm_name,
            client_id=client_id,
            client_secret_key=secret if secret is not None else f"{client_id}-secret",
        )

    def client_token(self, client_id: str, secret: str | None = None) -> str:
        """An access token for a service-account client (client_credentials grant)."""
        response = self.keycloak_openid(client_id, secret).token(grant_type="client_credentials")
        return _access_token(response)

    def password_token(
        self,
        client_id: str,
        username: str,
        password: str = "demo",  # noqa: S107 -- the demo users' password in the realm export
        *,
        secret: str | None = None,
    ) -> str:
        """An access token for a user logging in through a direct-access-grant client."""
        response = self.keycloak_openid(client_id, secret).token(username, password)
        return _access_token(response)

    def private_jwks(self) -> dict[str, Any]:
        """The issuer's private JWK set (for tests that forge tokens)."""
        data: dict[str, Any] = json.loads(self.keys_file.read_text())
        return data

    def private_key(self, use: str = "sig") -> dict[str, Any]:
        """The private JWK with the given ``use`` ("sig" or "enc")."""
        for key in self.private_jwks()["keys"]:
            if key.get("use") == use:
                found: dict[str, Any] = key
                return found
        raise LocalIdpError(f"no key with use={use!r} in {self.keys_file}")

    # ------------------------------------------------------------------ lifecycle

    def logs(self) -> str:
        """What the issuer wrote to stderr so far (refused token requests are logged there)."""
        path = self._workdir / "stderr.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def stop(self) -> None:
        """Stop the issuer (SIGTERM, then SIGKILL after 5 s). Safe to call twice."""
        _terminate(self.process)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalIdp(issuer={self.issuer!r}, pid={self.process.pid})"


def _access_token(response: object) -> str:
    token = response.get("access_token") if isinstance(response, dict) else None
    if not isinstance(token, str):
        raise LocalIdpError(f"token response without access_token: {response!r}")
    return token


def _wait_for_issuer(
    process: subprocess.Popen[bytes], stdout_path: Path, stderr_path: Path, timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    while True:
        # only complete lines: the last element of split("\n") may still be being written
        for line in stdout_path.read_text(errors="replace").split("\n")[:-1]:
            if line.startswith(LISTENING_PREFIX):
                return line.removeprefix(LISTENING_PREFIX).strip()
        returncode = process.poll()
        if returncode is not None or time.monotonic() > deadline:
            what = (
                f"exited with status {returncode}"
                if returncode is not None
                else f"did not report listening within {timeout:g} s"
            )
            stderr = stderr_path.read_text(errors="replace")
            raise LocalIdpError(f"carenet-local-idp {what}; stderr:\n{stderr}")
        time.sleep(0.05)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)

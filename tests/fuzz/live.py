"""The platform the fuzz suite attacks (started by the ``platform`` fixture in conftest.py): identity, referral, careplan and outcomes as real
processes (``<svc>.main serve``) on real ports, each on a fresh PostgreSQL database that its
own CLI migrated and seeded with the demo region, behind the test OIDC issuer
(testkit's ``local_idp``); callers with real tokens of that issuer; and the names and page
tokens the strategies draw from, read from the running services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from testkit.idp import LocalIdp
from testkit.processes import ServiceProcess

from .harness import Deadlines, Outcome, Rpc, all_rpcs, invoke, raw_bytes, resource_hints
from .values import Corpus, shape_of

TOKEN_MAX_AGE_SECONDS = 240.0  # the test issuer's tokens live 900 s; fuzz runs take hours
ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})
MAX_LOG_LINES = 20_000


class Caller:
    """Someone with a real token: a person logged in through a client, or a client's own
    service account. Tokens are renewed well before they expire."""

    def __init__(self, label: str, idp: LocalIdp, client_id: str, username: str = "") -> None:
        self.label = label
        self._idp = idp
        self._client_id = client_id
        self._username = username
        self._token = ""
        self._fetched = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if not self._token or time.monotonic() - self._fetched > TOKEN_MAX_AGE_SECONDS:
                self._token = (
                    self._idp.password_token(self._client_id, self._username)
                    if self._username
                    else self._idp.client_token(self._client_id)
                )
                self._fetched = time.monotonic()
            return self._token

    def __repr__(self) -> str:
        return self.label


def callers_for(idp: LocalIdp) -> dict[str, list[Caller]]:
    """Per service: a clinician first (shrinking ends there), then callers whose roles reach
    further: the care-group admin, a service account the service accepts, and the role the
    service exists for."""
    clinician = Caller("gp dr.jansen", idp, "carenet-kis", "dr.jansen")
    admin = Caller("care-group-admin admin.zuidoost", idp, "carenet-kis", "admin.zuidoost")
    return {
        "identity": [
            clinician,
            admin,
            Caller("service svc-referral", idp, "svc-referral"),
            Caller("auditor auditor.dekker", idp, "carenet-kis", "auditor.dekker"),
            Caller("patient pat.dewit", idp, "carenet-patient-app", "pat.dewit"),
        ],
        "referral": [
            clinician,
            admin,
            Caller("service svc-careplan", idp, "svc-careplan"),
            Caller("provider coach.degroot", idp, "carenet-kis", "coach.degroot"),
        ],
        "careplan": [
            clinician,
            admin,
            Caller("specialist dr.smit", idp, "carenet-kis", "dr.smit"),
            Caller("patient pat.dewit", idp, "carenet-patient-app", "pat.dewit"),
        ],
        "outcomes": [
            clinician,
            admin,
            Caller("insurer client carenet-insurer", idp, "carenet-insurer"),
        ],
    }


class Platform:
    """The running services, a channel to each, their callers and the corpus."""

    def __init__(
        self,
        processes: dict[str, ServiceProcess],
        channels: dict[str, grpc.Channel],
        callers: dict[str, list[Caller]],
        seeded: dict[str, dict[str, Any]],
        deadlines: Deadlines,
    ) -> None:
        self.processes = processes
        self.channels = channels
        self.callers = callers
        self.seeded = seeded
        self.deadlines = deadlines
        self.corpus = Corpus()
        # lines dropped from the front of each service's log: marks count from its start
        self._dropped = dict.fromkeys(processes, 0)
        self._log_lock = threading.Lock()

    def __repr__(self) -> str:
        return "platform(" + ", ".join(f"{n}={p.target}" for n, p in self.processes.items()) + ")"

    def call(
        self,
        rpc: Rpc,
        bodies: Sequence[bytes],
        caller: Caller,
        extra_metadata: Sequence[tuple[str, str]] = (),
    ) -> Outcome:
        metadata = [("authorization", f"Bearer {caller.token()}"), *extra_metadata]
        return invoke(self.channels[rpc.service], rpc, bodies, metadata, self.deadlines)

    def marks(self) -> dict[str, int]:
        """Where each service's log stands now, counted from its first line (read with
        :meth:`server_errors`). Old lines are dropped, so that a long run does not keep
        millions of them; marks stay valid while other threads call."""
        with self._log_lock:
            for name, process in self.processes.items():
                if len(process.lines) > MAX_LOG_LINES:
                    # the reader thread only appends; deleting from the front is safe under
                    # the GIL
                    cut = len(process.lines) - MAX_LOG_LINES // 10
                    del process.lines[:cut]
                    self._dropped[name] += cut
            return {name: self._dropped[name] + len(p.lines) for name, p in self.processes.items()}

    def server_errors(self, marks: dict[str, int], wait: float = 0.0) -> list[dict[str, Any]]:
        """ERROR lines every service logged since ``marks`` (waiting up to ``wait`` seconds
        for one to arrive): where the server raised, never what the request held. With RPCs
        fuzzed side by side, a line may come from another RPC's call; each names its RPC."""
        deadline = time.monotonic() + wait
        while True:
            found: list[dict[str, Any]] = []
            for name, process in self.processes.items():
                with self._log_lock:
                    start = max(0, marks[name] - self._dropped[name])
                    lines = process.lines[start:]
                for line in lines:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        if "Traceback" in line or "Error" in line:
                            found.append({"service": name, "event": line[:300]})
                        continue
                    if isinstance(event, dict) and event.get("level") in ERROR_LEVELS:
                        found.append(event)
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def stopped(self) -> list[str]:
        """Services whose process has exited."""
        return [
            name
            for name, p in self.processes.items()
            if p.process is None or p.process.poll() is not None
        ]


def _cli(name: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", f"{name}.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    for line in reversed(done.stdout.splitlines()):
        try:
            out = json.loads(line)
        except ValueError:
            continue
        if isinstance(out, dict):
            return out
    return {}


def _in_parallel(*jobs: Any) -> list[Any]:
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int, job: Any) -> None:
        try:
            results[i] = job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# ---------------------------------------------------------------- the corpus

MAX_OBSERVED = 16
MAX_INSTANCES = 8


class _Harvest:
    """What answers held: names, page tokens, scalar values by field name, real messages."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.tokens: set[str] = set()
        self.observed: dict[tuple[str, str], set[Any]] = {}
        self.instances: dict[str, set[bytes]] = {}

    def take(self, message: Message) -> None:
        kind = message.DESCRIPTOR.full_name
        if not kind.startswith("google."):
            bucket = self.instances.setdefault(kind, set())
            if len(bucket) < MAX_INSTANCES:
                bucket.add(message.SerializeToString(deterministic=True))
        for f, value in message.ListFields():
            items = value if f.is_repeated else [value]
            for item in items:
                if isinstance(item, Message):
                    self.take(item)
                elif f.name.endswith("page_token"):
                    self.tokens.add(str(item))
                else:
                    self._scalar(f.name, item)

    def _scalar(self, field_name: str, item: Any) -> None:
        if isinstance(item, bool):
            return
        if isinstance(item, str):
            if not item or len(item) > 100:
                return
            if "/" in item and " " not in item:
                self.names.add(item)
            key = (field_name, "str")
        elif isinstance(item, int):
            key = (field_name, "int")
        elif isinstance(item, float):
            key = (field_name, "float")
        else:
            return
        bucket = self.observed.setdefault(key, set())
        if len(bucket) < MAX_OBSERVED:
            bucket.add(item)

    def corpus(self) -> Corpus:
        return Corpus(
            names=tuple(sorted(self.names)),
            page_tokens=tuple(sorted(self.tokens)),
            observed={k: tuple(sorted(v, key=repr)) for k, v in sorted(self.observed.items())},
            instances={k: tuple(sorted(v)) for k, v in sorted(self.instances.items())},
        )


def harvest(platform: Platform) -> Corpus:
    """Read the seeded platform the way a client would: every List RPC, as every caller,
    with page size 1 (for page tokens) and the default, under each top-level parent; then
    every Get RPC for each name of the kind it reads."""
    names: set[str] = {
        "patients/p-0001",
        "patients/p-0002",
        "patients/p-0003",
        "patients/p-0001/carePlan",
        "organisations/cg-zuidoost",
        "organisations/gp-de-linde",
        "organisations/hosp-catharina",
        "organisations/gli-beweegfit",
        "organisations/ins-vgz",
        "offers/gli-beweegfit-cool",
        "contracts/vgz-zuidoost-2025",
    }
    for values in platform.seeded.values():
        names |= {v for v in values.values() if isinstance(v, str) and "/" in v}
    found = _Harvest(names)
    parents = ["", *sorted(n for n in names if n.count("/") == 1)]
    for rpc in all_rpcs():
        if not rpc.method.name.startswith("List") or "page_token" not in rpc.input.fields_by_name:
            continue
        others = [
            f.name
            for f in rpc.input.fields
            if f.type == FieldDescriptor.TYPE_STRING and f.name != "page_token"
        ]
        cls = GetMessageClass(rpc.input)
        for parent in parents if others else [""]:
            for size in (1, 0):
                request = cls(page_size=size, **dict.fromkeys(others, parent))
                for caller in platform.callers[rpc.service]:
                    for reply in _replies(platform, rpc, request, caller):
                        found.take(reply)
    hints = resource_hints(all_rpcs())
    for rpc in all_rpcs():
        shape = hints.get((rpc.input.full_name, "name"))
        if not rpc.method.name.startswith("Get") or shape is None:
            continue
        cls = GetMessageClass(rpc.input)
        for name in sorted(n for n in found.names if shape_of(n) == shape)[:6]:
            for caller in platform.callers[rpc.service]:
                for reply in _replies(platform, rpc, cls(name=name), caller):
                    found.take(reply)
    return found.corpus()


def _replies(platform: Platform, rpc: Rpc, request: Message, caller: Caller) -> list[Message]:
    metadata = (("authorization", f"Bearer {caller.token()}"),)
    channel = platform.channels[rpc.service]
    output = GetMessageClass(rpc.output)
    body = request.SerializeToString()
    try:
        if rpc.server_streaming:
            stream = channel.unary_stream(rpc.path, raw_bytes, raw_bytes)(
                body, metadata=metadata, timeout=5
            )
            return [output.FromString(raw) for raw in stream]
        one = channel.unary_unary(rpc.path, raw_bytes, raw_bytes)(
            body, metadata=metadata, timeout=20
        )
    except grpc.RpcError:
        return []
    return [output.FromString(one)]

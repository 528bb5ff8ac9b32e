"""Calling any RPC with raw bytes, and the property every answer must have.

Every RPC is called through a generic channel with identity serializers, so that the same
code sends generated messages and bodies that are not a valid encoding of anything.

The property (AIP-193, the error contract of every carenet service):

- never INTERNAL or UNKNOWN;
- every other non-OK code carries a ``google.rpc.Status`` in ``grpc-status-details-bin``
  whose code and message are the call's, with exactly one ``ErrorInfo`` (reason in
  UPPER_SNAKE, domain ``<service>.carenet``);
- INVALID_ARGUMENT carries a ``BadRequest`` naming at least one field;
- an error message never repeats a BSN the request carried;
- a unary or client-streaming call answers within its deadline; a server stream may still
  be open when its (short) deadline passes.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.api import resource_pb2
from google.protobuf import text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2, status_pb2

from carenet.careplan.v1 import careplan_service_pb2
from carenet.identity.v1 import identity_service_pb2
from carenet.outcomes.v1 import outcomes_service_pb2
from carenet.referral.v1 import referral_service_pb2

from .values import parent_shape, shape_of_pattern

SERVICE_MODULES = {
    "identity": identity_service_pb2,
    "referral": referral_service_pb2,
    "careplan": careplan_service_pb2,
    "outcomes": outcomes_service_pb2,
}
DOMAINS = frozenset(f"{name}.carenet" for name in SERVICE_MODULES)
STATUS_DETAILS_KEY = "grpc-status-details-bin"
REASON = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
MAX_BODY_BYTES = 4 * 1024 * 1024


class Rpc:
    """One method of one service."""

    def __init__(self, service: str, method: MethodDescriptor) -> None:
        self.service = service
        self.method = method

    @property
    def id(self) -> str:
        return f"{self.service}.{self.method.name}"

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def input(self) -> Descriptor:
        return self.method.input_type

    @property
    def output(self) -> Descriptor:
        return self.method.output_type

    @property
    def client_streaming(self) -> bool:
        return bool(self.method.client_streaming)

    @property
    def server_streaming(self) -> bool:
        return bool(self.method.server_streaming)

    def __repr__(self) -> str:
        return self.id


def all_rpcs() -> list[Rpc]:
    """Every method of every service, read from the descriptors (a new RPC is fuzzed
    without anyone listing it)."""
    found: list[Rpc] = []
    for name, module in SERVICE_MODULES.items():
        for service in module.DESCRIPTOR.services_by_name.values():
            found += [Rpc(name, method) for method in service.methods]
    return found


def resource_hints(rpcs: Sequence[Rpc]) -> dict[tuple[str, str], str]:
    """(request type, field) -> the shape of name it takes, read from the resource pattern
    of what the RPC answers: ``GetOfferRequest.name`` -> ``offers/*``,
    ``ListReferralsRequest.parent`` -> ``patients/*``."""
    hints: dict[tuple[str, str], str] = {}
    for rpc in rpcs:
        pattern = _pattern(rpc.output) or next(
            (
                _pattern(f.message_type)
                for f in rpc.output.fields
                if f.is_repeated and f.message_type is not None and _pattern(f.message_type)
            ),
            "",
        )
        if not pattern:
            continue
        shape = shape_of_pattern(pattern)
        fields = rpc.input.fields_by_name
        if "name" in fields and fields["name"].type == FieldDescriptor.TYPE_STRING:
            hints[(rpc.input.full_name, "name")] = shape
        if "parent" in fields and fields["parent"].type == FieldDescriptor.TYPE_STRING:
            hints[(rpc.input.full_name, "parent")] = parent_shape(shape)
    return hints


def _pattern(descriptor: Descriptor | None) -> str:
    if descriptor is None:
        return ""
    options = descriptor.GetOptions()
    if not options.HasExtension(resource_pb2.resource):
        return ""
    patterns = list(options.Extensions[resource_pb2.resource].pattern)
    return patterns[0] if patterns else ""


# ---------------------------------------------------------------- calling


@dataclass(frozen=True)
class Deadlines:
    """A unary or client-streaming call must answer within ``unary``; a server stream is read
    for ``server_stream`` at most, and for ``stream_linger`` more once its first message has
    arrived (the server has answered; what follows is more of the same)."""

    unary: float = 20.0
    server_stream: float = 0.5
    stream_linger: float = 0.1

    @classmethod
    def from_env(cls) -> Deadlines:
        return cls(
            unary=float(os.environ.get("CARENET_FUZZ_DEADLINE_SECONDS", "20")),
            server_stream=float(os.environ.get("CARENET_FUZZ_STREAM_SECONDS", "0.5")),
        )


@dataclass
class Outcome:
    code: grpc.StatusCode
    details: str
    trailing: tuple[tuple[str, str | bytes], ...]
    responses: int
    seconds: float
    bad_responses: int = 0


def raw_bytes(data: bytes) -> bytes:
    """The identity (de)serializer: bodies go out and come back as bytes."""
    return data


_CALLABLES: dict[tuple[grpc.Channel, str], Any] = {}


def _callable(channel: grpc.Channel, rpc: Rpc) -> Any:
    """The channel's multi-callable for the RPC with identity serializers, made once (making
    one costs more than a call's own work in the client)."""
    key = (channel, rpc.path)
    found = _CALLABLES.get(key)
    if found is None:
        if rpc.client_streaming and rpc.server_streaming:
            make: Any = channel.stream_stream
        elif rpc.server_streaming:
            make = channel.unary_stream
        elif rpc.client_streaming:
            make = channel.stream_unary
        else:
            make = channel.unary_unary
        found = _CALLABLES.setdefault(key, make(rpc.path, raw_bytes, raw_bytes))
    return found


def invoke(
    channel: grpc.Channel,
    rpc: Rpc,
    bodies: Sequence[bytes],
    metadata: Sequence[tuple[str, str]],
    deadlines: Deadlines,
) -> Outcome:
    """Sends ``bodies`` (one, unless the RPC streams requests) as they are, reads every
    answer, and returns the code, details and trailing metadata."""
    output = GetMessageClass(rpc.output)
    started = time.monotonic()
    responses: list[bytes] = []
    call: Any
    md = tuple(metadata)
    multi = _callable(channel, rpc)
    try:
        if rpc.client_streaming and rpc.server_streaming:
            call = multi(iter(bodies), metadata=md, timeout=deadlines.server_stream)
            _read_stream(call, responses, deadlines.stream_linger)
        elif rpc.server_streaming:
            call = multi(bodies[0], metadata=md, timeout=deadlines.server_stream)
            _read_stream(call, responses, deadlines.stream_linger)
        elif rpc.client_streaming:
            reply, call = multi.with_call(iter(bodies), metadata=md, timeout=deadlines.unary)
            responses.append(reply)
        else:
            reply, call = multi.with_call(bodies[0], metadata=md, timeout=deadlines.unary)
            responses.append(reply)
    except grpc.RpcError as error:
        call = error
    bad = 0
    for raw in responses:
        try:
            output.FromString(raw)
        except DecodeError:
            bad += 1
    return Outcome(
        code=call.code(),
        details=call.details() or "",
        trailing=tuple(call.trailing_metadata() or ()),
        responses=len(responses),
        seconds=time.monotonic() - started,
        bad_responses=bad,
    )


def _read_stream(call: Any, responses: list[bytes], linger: float) -> None:
    """Reads a server stream until it ends or its deadline passes, but no longer than
    ``linger`` after its first message (then the call is cancelled: ``CANCELLED`` without a
    status, like a deadline, is a stream still open)."""
    timer: threading.Timer | None = None
    try:
        for raw in call:
            responses.append(raw)
            if timer is None:
                timer = threading.Timer(linger, call.cancel)
                timer.daemon = True
                timer.start()
    finally:
        if timer is not None:
            timer.cancel()


# ---------------------------------------------------------------- the property


@dataclass(frozen=True)
class Problem:
    """One way an answer breaks the error contract. ``kind`` and ``code`` (plus, for
    INTERNAL, where the server raised) tell distinct failures apart."""

    kind: str
    code: str
    text: str
    where: str = ""

    @property
    def key(self) -> str:
        return ":".join(p for p in (self.kind, self.code, self.where) if p)


def problems(rpc: Rpc, outcome: Outcome, bsns: Sequence[str] = ()) -> list[Problem]:
    code = outcome.code
    name = code.name
    found: list[Problem] = []
    if outcome.bad_responses:
        found.append(Problem("UNDECODABLE_RESPONSE", name, "a response is not a valid message"))
    if code == grpc.StatusCode.OK:
        return found
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        found.append(Problem("INTERNAL_OR_UNKNOWN", name, outcome.details))
        return found
    raw = [v for k, v in outcome.trailing if k == STATUS_DETAILS_KEY]
    if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED) and not raw:
        # the client's own deadline passed: fine for a stream that stays open, a hang otherwise
        if not rpc.server_streaming:
            found.append(
                Problem("NO_ANSWER_WITHIN_DEADLINE", name, f"after {outcome.seconds:.1f} s")
            )
        return found
    if not raw or not isinstance(raw[0], bytes):
        found.append(Problem("NO_STATUS", name, outcome.details))
        return found
    status = status_pb2.Status.FromString(raw[0])
    if status.code != code.value[0]:
        found.append(
            Problem("STATUS_CODE_MISMATCH", name, f"status.code={status.code}: {outcome.details}")
        )
    if status.message != outcome.details:
        found.append(Problem("STATUS_MESSAGE_MISMATCH", name, status.message))
    infos: list[error_details_pb2.ErrorInfo] = []
    bad_requests: list[error_details_pb2.BadRequest] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            bad_requests.append(bad)
    if len(infos) != 1:
        found.append(
            Problem("ERROR_INFO_COUNT", name, f"{len(infos)} ErrorInfo: {outcome.details}")
        )
    for info in infos:
        if not REASON.match(info.reason) or info.domain not in DOMAINS:
            found.append(
                Problem("BAD_ERROR_INFO", name, f"reason={info.reason!r} domain={info.domain!r}")
            )
    if code == grpc.StatusCode.INVALID_ARGUMENT and not any(
        v.field for b in bad_requests for v in b.field_violations
    ):
        found.append(Problem("NO_BAD_REQUEST", name, outcome.details))
    shown = outcome.details + status.message
    for bsn in bsns:
        if len(bsn) >= 8 and bsn in shown:
            found.append(Problem("BSN_IN_ERROR", name, "the error message repeats the BSN"))
    return found


def bsns_in(message: Message) -> list[str]:
    """Every value of a string field named ``bsn`` anywhere in the message."""
    out: list[str] = []
    for f, value in message.ListFields():
        items = value if f.is_repeated else [value]
        for item in items:
            if f.type == FieldDescriptor.TYPE_MESSAGE and isinstance(item, Message):
                out += bsns_in(item)
            elif f.name == "bsn" and isinstance(item, str):
                out.append(item)
    return out


# ---------------------------------------------------------------- failures, counts, report


_FAILURE_TYPES: dict[str, type[AssertionError]] = {}
_FAILURE_TYPES_LOCK = threading.Lock()


def failure_type(key: str) -> type[AssertionError]:
    """One exception class per kind of failure, so that Hypothesis reports (and shrinks)
    each distinct failure of an RPC separately instead of stopping at the first."""
    with _FAILURE_TYPES_LOCK:
        if key not in _FAILURE_TYPES:
            name = "Fuzz_" + re.sub(r"[^0-9A-Za-z]+", "_", key).strip("_")
            _FAILURE_TYPES[key] = type(name, (AssertionError,), {})
        return _FAILURE_TYPES[key]


def render(message: Message, limit: int = 4000) -> str:
    """The message as one line of text format; long values cut in the middle."""
    text = text_format.MessageToString(message, as_one_line=True)
    if len(text) > limit:
        text = f"{text[: limit // 2]} ...({len(text) - limit} chars)... {text[-limit // 2 :]}"
    return text


@dataclass
class Tally:
    """Calls and codes per RPC and kind, and the failures recorded; shared by the threads
    that fuzz RPCs side by side."""

    calls: Counter[str] = field(default_factory=Counter)
    codes: dict[str, Counter[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, key: str, code: grpc.StatusCode, seconds: float = 0.0) -> None:
        with self._lock:
            self.calls[key] += 1
            self.codes.setdefault(key, Counter())[code.name] += 1
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def total(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def record_failure(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.failures.append(entry)
            folder = report_folder()
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
                with (folder / "failures.jsonl").open("a") as out:
                    out.write(json.dumps(entry, default=str) + "\n")

    def write_summary(self) -> None:
        folder = report_folder()
        with self._lock:
            if folder is None or not self.calls:
                return
            summary = {
                key: {
                    "calls": self.calls[key],
                    "codes": dict(self.codes[key]),
                    "call_seconds": round(self.seconds.get(key, 0.0), 1),
                }
                for key in sorted(self.calls)
            }
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / "summary.json.part"
        partial.write_text(json.dumps(summary, indent=1) + "\n")
        partial.replace(folder / "summary.json")


TALLY = Tally()


def report_folder() -> Path | None:
    folder = os.environ.get("CARENET_FUZZ_REPORT_DIR", "")
    return Path(folder) if folder else None

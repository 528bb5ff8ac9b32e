"""Every RPC of every service, fuzzed: requests generated from the proto descriptors, and raw
bodies that do not decode, sent with real tokens to the real servers. Whatever arrives, the
answer is OK or a canonical error with its ``google.rpc.Status`` (see harness.py for the
property).

``CARENET_FUZZ_PROFILE`` picks the run:

- ``ci`` (the default, what ``make test`` runs): 30 generated requests and 10 raw bodies per
  RPC, derandomized, so that the same examples run every time and a failure reproduces;
- ``fuzz`` (``make fuzz``): 10,000 of each per RPC from a fresh random seed. A failure is
  shrunk to a minimal example and recorded, and fuzzing goes on in a new round (a new seed)
  until the RPC has had its examples; a failure already recorded is counted, not shrunk
  again, so one common bug does not hide the others.

``CARENET_FUZZ_EXAMPLES`` and ``CARENET_FUZZ_RAW_EXAMPLES`` override the counts.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, Verbosity, assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import current_build_context

from .harness import (
    MAX_BODY_BYTES,
    TALLY,
    Outcome,
    Problem,
    Rpc,
    all_rpcs,
    bsns_in,
    failure_type,
    problems,
    render,
    resource_hints,
)
from .live import Platform
from .strategies import MessageStrategies
from .values import strings
from .wire import raw_bodies, unknown_fields

PROFILE = os.environ.get("CARENET_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "fuzz"):
    raise ValueError(f"CARENET_FUZZ_PROFILE must be ci or fuzz, not {PROFILE!r}")
_DEFAULT_EXAMPLES = {"ci": (30, 10), "fuzz": (10_000, 10_000)}[PROFILE]
GENERATED_EXAMPLES = int(os.environ.get("CARENET_FUZZ_EXAMPLES") or _DEFAULT_EXAMPLES[0])
RAW_EXAMPLES = int(
    os.environ.get("CARENET_FUZZ_RAW_EXAMPLES")
    or os.environ.get("CARENET_FUZZ_EXAMPLES")
    or _DEFAULT_EXAMPLES[1]
)
MAX_ROUNDS = 1 if PROFILE == "ci" else 50

SETTINGS = settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    print_blob=True,
    report_multiple_bugs=True,
    verbosity=Verbosity.normal,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    # CI: the same examples every run, so a failure reproduces; make fuzz: a fresh seed
    derandomize=PROFILE == "ci",
)

RPCS = all_rpcs()
ON_BEHALF_OF = "x-carenet-on-behalf-of"


@pytest.fixture(scope="session")
def messages(platform: Platform) -> MessageStrategies:
    return MessageStrategies(platform.corpus, resource_hints(RPCS))


class Fuzzing:
    """One RPC's run: rounds of Hypothesis until it has had its examples (one round in CI).
    Failures already shrunk in an earlier round are counted but no longer raised."""

    def __init__(self, platform: Platform, rpc: Rpc, kind: str, examples: int) -> None:
        self.platform = platform
        self.rpc = rpc
        self.kind = kind
        self.examples = examples
        self.key = f"{rpc.id} {kind}"
        self.known: set[type[AssertionError]] = set()

    def run(self, body: Callable[[st.DataObject], None]) -> None:
        failures: list[AssertionError] = []
        for _round in range(MAX_ROUNDS):
            remaining = self.examples - TALLY.calls[self.key]
            if remaining <= 0:
                break

            @settings(SETTINGS, max_examples=remaining)
            @given(data=st.data())
            def one_round(data: st.DataObject) -> None:
                body(data)

            found: list[BaseException]
            try:
                one_round()
                break
            except AssertionError as exc:
                found = [exc]
            except BaseExceptionGroup as group:
                found = list(group.exceptions)
            new = [e for e in found if isinstance(e, AssertionError)]
            if len(new) != len(found):  # not a property failure: stop here
                raise BaseExceptionGroup(f"fuzzing {self.rpc.id} stopped", found)
            self.known |= {type(e) for e in new}
            failures += new
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise ExceptionGroup(f"{len(failures)} distinct failures of {self.rpc.id}", failures)

    def check(
        self,
        outcome: Outcome,
        marks: dict[str, int],
        request_text: str,
        caller: str,
        bsns: list[str],
    ) -> None:
        TALLY.count(self.key, outcome.code)
        found = problems(self.rpc, outcome, bsns)
        if not found:
            return
        errors = self.platform.server_errors(marks, wait=1.0)
        # this RPC's own error line first (another service's, or a late one, after it)
        errors.sort(key=lambda e: e.get("rpc") != self.rpc.path)
        first = found[0]
        problem = Problem(first.kind, first.code, first.text, _where(errors))
        failure = failure_type(f"{self.rpc.id}:{problem.key}")
        if failure in self.known:
            return
        server = "; ".join(
            f"{e.get('service')}: {e.get('event')} {e.get('exception', '')} "
            f"{' <- '.join(reversed(e.get('stack') or []))}"
            for e in errors
        )
        note(f"answer: {outcome.code.name} {outcome.details!r} after {outcome.seconds:.2f} s")
        note(f"server log: {server or '(nothing at ERROR)'}")
        if current_build_context().is_final:
            TALLY.record_failure(
                {
                    "rpc": self.rpc.id,
                    "kind": self.kind,
                    "caller": caller,
                    "problems": [p.key for p in found],
                    "where": problem.where,
                    "code": outcome.code.name,
                    "details": outcome.details,
                    "request": request_text,
                    "server_log": server,
                    "stopped": self.platform.stopped(),
                }
            )
        raise failure(
            f"{self.rpc.id} answered {outcome.code.name} {outcome.details!r}: "
            + "; ".join(f"{p.kind} ({p.text})" for p in found)
        )


def _where(errors: list[dict[str, Any]]) -> str:
    """Where the first server error was raised: exception type and the innermost frame
    outside site-packages (e.g. ``ValueError timestamps.py:22``)."""
    for event in errors:
        stack = event.get("stack") or []
        frame = next((f for f in reversed(stack) if "/site-packages/" not in f), "")
        return f"{event.get('exception', '')} {frame.split(' ')[0].rsplit('/', 1)[-1]}".strip()
    return ""


@pytest.mark.parametrize("rpc", RPCS, ids=repr)
def test_generated_requests_get_a_canonical_answer(
    rpc: Rpc, platform: Platform, messages: MessageStrategies
) -> None:
    fuzzing = Fuzzing(platform, rpc, "generated", GENERATED_EXAMPLES)
    request = messages.message(rpc.input)
    callers = st.sampled_from(platform.callers[rpc.service])
    header = strings(platform.corpus).filter(_header_safe)

    def body(data: st.DataObject) -> None:
        caller = data.draw(callers, label="caller")
        if rpc.client_streaming:
            requests = data.draw(st.lists(request, max_size=3), label="requests")
        else:
            requests = [data.draw(request, label="request")]
        tails = [data.draw(unknown_fields(rpc.input), label="unknown fields") for _ in requests]
        bodies = [m.SerializeToString() + tail for m, tail in zip(requests, tails, strict=True)]
        assume(sum(map(len, bodies)) < MAX_BODY_BYTES)
        extra: list[tuple[str, str]] = []
        if data.draw(st.integers(0, 7), label="on behalf of?") == 7:
            extra.append((ON_BEHALF_OF, data.draw(header, label="as")))
        text = " | ".join(render(m) for m in requests)
        if any(tails):
            text += f" + unknown fields {b''.join(tails).hex()}"
        note(f"request as text: {text}")
        marks = platform.marks()
        outcome = platform.call(rpc, bodies, caller, extra)
        fuzzing.check(outcome, marks, text, repr(caller), [b for m in requests for b in bsns_in(m)])

    fuzzing.run(body)


@pytest.mark.parametrize("rpc", RPCS, ids=repr)
def test_undecodable_bodies_get_a_canonical_answer(
    rpc: Rpc, platform: Platform, messages: MessageStrategies
) -> None:
    fuzzing = Fuzzing(platform, rpc, "raw", RAW_EXAMPLES)
    caller = platform.callers[rpc.service][0]
    bodies = raw_bodies(rpc.input, messages)

    def body(data: st.DataObject) -> None:
        raw = data.draw(bodies, label="body")
        assume(len(raw) < MAX_BODY_BYTES)
        marks = platform.marks()
        outcome = platform.call(rpc, [raw], caller)
        text = f"raw body (base64) {base64.b64encode(raw).decode()}"
        fuzzing.check(outcome, marks, text, repr(caller), [])

    fuzzing.run(body)


def _header_safe(value: str) -> bool:
    # gRPC refuses to send a header with control characters or non-ASCII; that is the
    # client library, not the service
    return value.isascii() and value.isprintable() and len(value) < 4096 and value == value.strip()

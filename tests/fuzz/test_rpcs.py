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
import json
import os
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any

# Imported here rather than lazily inside the fuzzing threads: pytest rewrites plugin
# modules as they are imported, and Python 3.11's parser is not safe in two threads at once
# ("AST constructor recursion depth mismatch").
import hypothesis.strategies._internal.flatmapped
import hypothesis.strategies._internal.regex  # noqa: F401
import pytest
from hypothesis import HealthCheck, Phase, Verbosity, assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import current_build_context, should_note
from hypothesis.internal.observability import observability_enabled

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
    report_folder,
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
# RPCs are fuzzed side by side by this many threads (each call waits on a server most of
# its time). An RPC's examples are split into shards of at most SHARD_EXAMPLES, each a
# Hypothesis run of its own, queued round by round (the first shard of every RPC, then the
# second, ...), so that every RPC advances at the same pace and one slow RPC does not hold
# up the end of the run.
WORKERS = int(os.environ.get("CARENET_FUZZ_WORKERS") or 8)
SHARD_EXAMPLES = int(os.environ.get("CARENET_FUZZ_SHARD_EXAMPLES") or 500)
# A time box (seconds, 0 for none): shards not started by then are not run, so every RPC
# stops at about the same count; the report and a warning per RPC cut short say so.
TIME_BOX_SECONDS = float(os.environ.get("CARENET_FUZZ_SECONDS") or 0)
PROGRESS_SECONDS = 60.0

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
GENERATED, RAW = "generated", "raw"
ONE_IN_EIGHT = st.integers(0, 7)


@pytest.fixture(scope="session")
def messages(platform: Platform) -> MessageStrategies:
    return MessageStrategies(platform.corpus, resource_hints(RPCS))


class Fuzzing:
    """One shard of one RPC's run: rounds of Hypothesis until the shard has had its examples
    (one round in CI). Failures already shrunk (in an earlier round or another shard of the
    same RPC: ``known`` is shared) are counted but no longer raised."""

    def __init__(
        self,
        platform: Platform,
        rpc: Rpc,
        kind: str,
        examples: int,
        known: set[type[AssertionError]],
    ) -> None:
        self.platform = platform
        self.rpc = rpc
        self.kind = kind
        self.examples = examples
        self.key = f"{rpc.id} {kind}"
        self.known = known
        self.calls = 0

    def run(self, body: Callable[[st.DataObject], None]) -> None:
        failures: list[AssertionError] = []
        for _round in range(MAX_ROUNDS):
            remaining = self.examples - self.calls
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
        request_text: Callable[[], str],
        caller: str,
        bsns: list[str],
    ) -> None:
        self.calls += 1
        TALLY.count(self.key, outcome.code, outcome.seconds)
        found = problems(self.rpc, outcome, bsns)
        if not found:
            return
        errors = self.platform.server_errors(marks, wait=1.0)
        # this RPC's own error line first (another RPC's, another service's, or a late one,
        # after it)
        errors.sort(key=lambda e: e.get("rpc") != self.rpc.path)
        first = found[0]
        problem = Problem(first.kind, first.code, first.text, _where(errors))
        failure = failure_type(f"{self.rpc.id}:{problem.key}")
        if failure in self.known:
            return
        server = "; ".join(
            f"{e.get('service')}: {e.get('rpc', '')} {e.get('event')} {e.get('exception', '')} "
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
                    "request": request_text(),
                    "server_log": server,
                    "stopped": self.platform.stopped(),
                }
            )
        raise failure(
            f"{self.rpc.id} answered {outcome.code.name} {outcome.details!r}: "
            + "; ".join(f"{p.kind} ({p.text})" for p in found)
        )


def note_lazily(text: Callable[[], str]) -> None:
    """``note(text())``, rendering the text only where Hypothesis keeps notes (the final,
    minimal example of a failure; verbose runs; observability): a request as text format
    costs more than most calls."""
    if should_note() or observability_enabled():
        note(text())


def _where(errors: list[dict[str, Any]]) -> str:
    """Where the first server error was raised: exception type and the innermost frame
    outside site-packages (e.g. ``ValueError timestamps.py:22``)."""
    for event in errors:
        stack = event.get("stack") or []
        frame = next((f for f in reversed(stack) if "/site-packages/" not in f), "")
        return f"{event.get('exception', '')} {frame.split(' ')[0].rsplit('/', 1)[-1]}".strip()
    return ""


def generated_body(
    rpc: Rpc, platform: Platform, messages: MessageStrategies, fuzzing: Fuzzing
) -> Callable[[st.DataObject], None]:
    """One call with a request generated from the RPC's input descriptor, as one of the
    service's callers, now and then on behalf of someone."""
    request = messages.message(rpc.input)
    callers = st.sampled_from(platform.callers[rpc.service])
    header = strings(platform.corpus).filter(_header_safe)
    # made once: a strategy made anew for every call is validated anew
    several = st.lists(request, max_size=3)
    undeclared = unknown_fields(rpc.input)

    def body(data: st.DataObject) -> None:
        caller = data.draw(callers, label="caller")
        if rpc.client_streaming:
            requests = data.draw(several, label="requests")
        else:
            requests = [data.draw(request, label="request")]
        tails = [data.draw(undeclared, label="unknown fields") for _ in requests]
        bodies = [m.SerializeToString() + tail for m, tail in zip(requests, tails, strict=True)]
        assume(sum(map(len, bodies)) < MAX_BODY_BYTES)
        extra: list[tuple[str, str]] = []
        if data.draw(ONE_IN_EIGHT, label="on behalf of?") == 7:
            extra.append((ON_BEHALF_OF, data.draw(header, label="as")))

        def text() -> str:
            shown = " | ".join(render(m) for m in requests)
            if any(tails):
                shown += f" + unknown fields {b''.join(tails).hex()}"
            return shown

        note_lazily(lambda: f"request as text: {text()}")
        marks = platform.marks()
        outcome = platform.call(rpc, bodies, caller, extra)
        fuzzing.check(outcome, marks, text, repr(caller), [b for m in requests for b in bsns_in(m)])

    return body


def raw_body(
    rpc: Rpc, platform: Platform, messages: MessageStrategies, fuzzing: Fuzzing
) -> Callable[[st.DataObject], None]:
    """One call with a body that is not a valid encoding of the request, as the clinician."""
    caller = platform.callers[rpc.service][0]
    bodies = raw_bodies(rpc.input, messages)

    def body(data: st.DataObject) -> None:
        raw = data.draw(bodies, label="body")
        assume(len(raw) < MAX_BODY_BYTES)
        marks = platform.marks()
        outcome = platform.call(rpc, [raw], caller)
        fuzzing.check(
            outcome,
            marks,
            lambda: f"raw body (base64) {base64.b64encode(raw).decode()}",
            repr(caller),
            [],
        )

    return body


BODIES = {GENERATED: generated_body, RAW: raw_body}
TESTS = {
    "test_generated_requests_get_a_canonical_answer": GENERATED,
    "test_undecodable_bodies_get_a_canonical_answer": RAW,
}


def _priority(rpc: Rpc, kind: str) -> int:
    """Within a round, which go first: server streams (each call may be held open), then the
    rest. VerifyAccessLog's generated requests go before everything (priority -1, all its
    shards): a verification without a checkpoint walks the whole access log (a page of it at
    most a call), which the other RPCs fill."""
    if rpc.method.name == "VerifyAccessLog" and kind == GENERATED:
        return -1
    return 0 if rpc.server_streaming else 1


class Campaign:
    """Every selected (RPC, kind) fuzzed side by side by WORKERS threads, in shards; each
    test waits for its RPC's shards and raises what they found. Started by the first test
    that asks, for the tests the session selected (``-k`` and the like are honoured)."""

    def __init__(self, platform: Platform, messages: MessageStrategies) -> None:
        self.platform = platform
        self.messages = messages
        self.futures: dict[tuple[str, str], list[Future[None]]] = {}
        self.executor: ThreadPoolExecutor | None = None
        self.done = threading.Event()
        self.started = time.monotonic()
        self.started_at = ""
        self.cut = 0  # shards the time box left out

    def start(self, selected: list[tuple[Rpc, str]]) -> None:
        counts = {GENERATED: GENERATED_EXAMPLES, RAW: RAW_EXAMPLES}
        jobs: list[tuple[tuple[int, int, int, int], Rpc, str, Fuzzing]] = []
        for order, (rpc, kind) in enumerate(selected):
            known: set[type[AssertionError]] = set()
            total = counts[kind]
            shards = max(1, -(-total // SHARD_EXAMPLES))
            priority = _priority(rpc, kind)
            for shard in range(shards):
                examples = total // shards + (1 if shard < total % shards else 0)
                fuzzing = Fuzzing(self.platform, rpc, kind, examples, known)
                place = (min(priority, 0), shard, priority, order)
                jobs.append((place, rpc, kind, fuzzing))
        jobs.sort(key=lambda job: job[0])
        self.started, self.started_at = time.monotonic(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="fuzz")
        for _, rpc, kind, fuzzing in jobs:
            body = BODIES[kind](rpc, self.platform, self.messages, fuzzing)
            future = self.executor.submit(fuzzing.run, body)
            self.futures.setdefault((rpc.id, kind), []).append(future)
        if TIME_BOX_SECONDS > 0:
            box = threading.Timer(TIME_BOX_SECONDS, self._cut)
            box.daemon = True
            box.start()
        if report_folder() is not None:
            threading.Thread(target=self._progress, args=(len(jobs),), daemon=True).start()

    def _cut(self) -> None:
        """The time box is over: shards not yet started are not run."""
        self.cut = sum(f.cancel() for fs in self.futures.values() for f in fs)

    def result(self, rpc: Rpc, kind: str) -> None:
        """Waits for the RPC's shards; raises their failures (one, or a group)."""
        failures: list[BaseException] = []
        cut = 0
        for future in self.futures[(rpc.id, kind)]:
            try:
                error = future.exception()
            except CancelledError:  # the time box, before or while waiting
                cut += 1
                continue
            if isinstance(error, BaseExceptionGroup):
                failures += list(error.exceptions)
            elif error is not None:
                failures.append(error)
        if cut:
            calls = TALLY.calls[f"{rpc.id} {kind}"]
            warnings.warn(
                f"{rpc.id} ({kind}): {calls} calls, {cut} shards not run (time box)",
                stacklevel=1,
            )
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise BaseExceptionGroup(f"{len(failures)} failures of {rpc.id} ({kind})", failures)

    def stop(self) -> None:
        self.done.set()
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
        self._write_run()

    def _write_run(self) -> None:
        """``run.json`` in the report folder: what ran, on which commit, for how long."""
        folder = report_folder()
        if folder is None or not self.futures:
            return
        folder.mkdir(parents=True, exist_ok=True)
        run = {
            "commit": _git("rev-parse", "HEAD"),
            "tree_modified": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "profile": PROFILE,
            "generated_examples": GENERATED_EXAMPLES,
            "raw_examples": RAW_EXAMPLES,
            "rpcs": len({rpc for rpc, _ in self.futures}),
            "workers": WORKERS,
            "shard_examples": SHARD_EXAMPLES,
            "time_box_seconds": TIME_BOX_SECONDS,
            "shards_not_run": self.cut,
            "started": self.started_at,
            "seconds": round(time.monotonic() - self.started),
            "calls": TALLY.total(),
            "failures": len(TALLY.failures),
        }
        (folder / "run.json").write_text(json.dumps(run, indent=1) + "\n")

    def _progress(self, jobs: int) -> None:
        """Every minute: the calls so far in ``progress.log`` and summary.json as it stands,
        in the report folder (pytest captures what the threads print)."""
        folder = report_folder()
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        while not self.done.wait(PROGRESS_SECONDS):
            finished = sum(f.done() for fs in self.futures.values() for f in fs)
            minutes = (time.monotonic() - started) / 60
            with (folder / "progress.log").open("a") as out:
                out.write(
                    f"{time.strftime('%H:%M:%S')} {TALLY.total()} calls in {minutes:.1f} min, "
                    f"{finished}/{jobs} shards done, {len(TALLY.failures)} failures recorded\n"
                )
            TALLY.write_summary()


@pytest.fixture(scope="session")
def campaign(
    request: pytest.FixtureRequest, platform: Platform, messages: MessageStrategies
) -> Iterator[Campaign]:
    running = Campaign(platform, messages)
    by_id = {rpc.id: rpc for rpc in RPCS}
    selected = [
        (by_id[repr(item.callspec.params["rpc"])], TESTS[item.originalname])
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname in TESTS
        and hasattr(item, "callspec")
    ]
    running.start(selected)
    yield running
    running.stop()


@pytest.mark.parametrize("rpc", RPCS, ids=repr)
def test_generated_requests_get_a_canonical_answer(rpc: Rpc, campaign: Campaign) -> None:
    campaign.result(rpc, GENERATED)


@pytest.mark.parametrize("rpc", RPCS, ids=repr)
def test_undecodable_bodies_get_a_canonical_answer(rpc: Rpc, campaign: Campaign) -> None:
    campaign.result(rpc, RAW)


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=os.path.dirname(__file__), capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def _header_safe(value: str) -> bool:
    # gRPC refuses to send a header with control characters or non-ASCII; that is the
    # client library, not the service
    return value.isascii() and value.isprintable() and len(value) < 4096 and value == value.strip()

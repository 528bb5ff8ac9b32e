"""Benchmark harness: a same-run baseline and a load runner.

The baseline is a bare gRPC server (no interceptors, no ORM, no auth) whose handlers run
one raw SQL statement on PostgreSQL through psycopg: ``Insert`` does one INSERT and COMMIT,
``Select`` one SELECT by primary key. A benchmark measures its candidate and this baseline
in alternating rounds in the same run and reports the median ratio with min and max.

A benchmark whose candidate must, by design, call a second service that commits before it
commits itself may also measure the *floor* of that design: the same baseline server
started with ``--downstream`` relays each ``Relay`` call to another baseline server's
``Insert`` (one bare gRPC call, one INSERT and COMMIT there) and then does its own INSERT
and COMMIT. That is the least any implementation of such a call can cost with these
building blocks (Python gRPC servers, psycopg, PostgreSQL): no token, no validation, no
logic. It is reported beside the baseline as ``floor``.

Run the baseline on its own: ``python bench/harness.py baseline-server DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
import psycopg
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
SERVICE = "carenet.bench.Baseline"
BASELINE_ROWS = 10_000


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class Stats:
    calls: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float


def run_load(call: Callable[[int], object], *, seconds: float, concurrency: int) -> Stats:
    """Calls ``call(i)`` from ``concurrency`` threads for ``seconds``; ``i`` counts calls per thread."""
    deadline = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[BaseException] = []

    def worker(slot: int) -> None:
        samples = latencies[slot]
        i = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                call(slot * 1_000_000 + i)
            except BaseException as exc:
                errors.append(exc)
                return
            samples.append(time.perf_counter() - started)
            i += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed; first: {errors[0]!r}") from errors[0]
    flat = sorted(x for samples in latencies for x in samples)
    if not flat:
        raise RuntimeError("no call completed")
    return Stats(
        calls=len(flat),
        seconds=elapsed,
        throughput=len(flat) / elapsed,
        p50_ms=flat[len(flat) // 2] * 1000,
        p99_ms=flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000,
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Comparison:
    name: str
    concurrency: int
    rounds: int
    baseline: list[Stats]
    candidate: list[Stats]
    floor: list[Stats] = field(default_factory=list)
    # Per call kind ("baseline", "candidate", "floor"), per process named in compare()'s
    # ``processes``: milliseconds of CPU per call in each round. Unlike throughput, CPU per
    # call hardly depends on what else runs on the machine.
    cpu_ms: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def ratios(self) -> list[float]:
        return _ratios(self.candidate, self.baseline, "throughput")

    @property
    def p99_ratios(self) -> list[float]:
        return _ratios(self.candidate, self.baseline, "p99_ms")

    def summary(self) -> dict[str, object]:
        r, p = self.ratios, self.p99_ratios
        cpu = {
            kind: {name: _spread(ms) for name, ms in by_process.items() if ms}
            for kind, by_process in self.cpu_ms.items()
        }
        summary = self._floor_summary() | {
            "name": self.name,
            "concurrency": self.concurrency,
            "rounds": self.rounds,
            "throughput_ratio": _spread(r),
            "p99_ratio": _spread(p),
            "baseline_throughput_median": statistics.median(s.throughput for s in self.baseline),
            "candidate_throughput_median": statistics.median(s.throughput for s in self.candidate),
            "baseline_p50_ms_median": statistics.median(s.p50_ms for s in self.baseline),
            "candidate_p50_ms_median": statistics.median(s.p50_ms for s in self.candidate),
            "baseline_p99_ms_median": statistics.median(s.p99_ms for s in self.baseline),
            "candidate_p99_ms_median": statistics.median(s.p99_ms for s in self.candidate),
        }
        return summary | ({"cpu_ms_per_call": cpu} if cpu else {})

    def _floor_summary(self) -> dict[str, object]:
        if not self.floor:
            return {}
        return {
            "floor_throughput_median": statistics.median(s.throughput for s in self.floor),
            "floor_p99_ms_median": statistics.median(s.p99_ms for s in self.floor),
            "floor_vs_baseline": _spread(_ratios(self.floor, self.baseline, "throughput")),
            "floor_p99_vs_baseline": _spread(_ratios(self.floor, self.baseline, "p99_ms")),
            "candidate_vs_floor": _spread(_ratios(self.candidate, self.floor, "throughput")),
        }


def _ratios(upper: list[Stats], lower: list[Stats], metric: str) -> list[float]:
    return [
        float(getattr(u, metric)) / float(getattr(d, metric))
        for u, d in zip(upper, lower, strict=True)
    ]


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def compare(
    name: str,
    baseline: Callable[[int], object],
    candidate: Callable[[int], object],
    *,
    rounds: int = 5,
    seconds: float = 3.0,
    concurrency: int = 1,
    warmup_seconds: float = 1.0,
    floor: Callable[[int], object] | None = None,
    processes: dict[str, dict[str, int]] | None = None,
) -> Comparison:
    """Alternates baseline, candidate (and floor) rounds so all see the same machine noise.

    ``processes`` maps a call kind (``baseline``, ``candidate``, ``floor``) to the server
    processes that serve it, by name and pid: each round then also records their CPU time
    per call (:attr:`Comparison.cpu_ms`)."""
    kinds = ["baseline", "candidate"] + (["floor"] if floor is not None else [])
    calls = [baseline, candidate] + ([floor] if floor is not None else [])
    for call in calls:
        run_load(call, seconds=warmup_seconds, concurrency=concurrency)
    measured: list[list[Stats]] = [[] for _ in calls]
    pids = processes or {}
    cpu_ms: dict[str, dict[str, list[float]]] = {
        kind: {process: [] for process in pids[kind]} for kind in kinds if pids.get(kind)
    }
    for _ in range(rounds):
        for kind, call, stats in zip(kinds, calls, measured, strict=True):
            serving = pids.get(kind, {})
            before = {process: cpu_seconds(pid) for process, pid in serving.items()}
            stats.append(run_load(call, seconds=seconds, concurrency=concurrency))
            for process, pid in serving.items():
                used = cpu_seconds(pid) - before[process]
                cpu_ms[kind][process].append(used * 1000 / stats[-1].calls)
    floor_stats = measured[2] if floor is not None else []
    return Comparison(name, concurrency, rounds, measured[0], measured[1], floor_stats, cpu_ms)


def report(results: list[Comparison], out: str) -> None:
    """Prints each comparison and writes them as JSON under build/bench/."""
    summaries = [r.summary() for r in results]
    for s in summaries:
        tr, pr = s["throughput_ratio"], s["p99_ratio"]
        assert isinstance(tr, dict)
        assert isinstance(pr, dict)
        print(
            f"{s['name']} (concurrency {s['concurrency']}, {s['rounds']} rounds): "
            f"throughput {s['candidate_throughput_median']:.0f}/s vs baseline "
            f"{s['baseline_throughput_median']:.0f}/s = {tr['median']:.0%} "
            f"(min {tr['min']:.0%}, max {tr['max']:.0%}); "
            f"p99 {s['candidate_p99_ms_median']:.2f} ms vs {s['baseline_p99_ms_median']:.2f} ms "
            f"= {pr['median']:.2f}x"
        )
        if "floor_vs_baseline" in s:
            fb, cf, fp = s["floor_vs_baseline"], s["candidate_vs_floor"], s["floor_p99_vs_baseline"]
            assert isinstance(fb, dict) and isinstance(cf, dict) and isinstance(fp, dict)
            print(
                f"  floor (bare relay + INSERT+COMMIT downstream and here): "
                f"{s['floor_throughput_median']:.0f}/s = {fb['median']:.0%} of the baseline "
                f"(min {fb['min']:.0%}, max {fb['max']:.0%}), p99 {fp['median']:.2f}x; "
                f"candidate = {cf['median']:.0%} of the floor "
                f"(min {cf['min']:.0%}, max {cf['max']:.0%})"
            )
        cpu = s.get("cpu_ms_per_call")
        if isinstance(cpu, dict):
            for kind, by_process in cpu.items():
                shown = ", ".join(
                    f"{name} {v['median']:.2f} ms ({v['min']:.2f}-{v['max']:.2f})"
                    for name, v in by_process.items()
                )
                print(f"  CPU per {kind} call: {shown}")
    target = REPO / "build" / "bench" / out
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        json.dumps(
            {"results": summaries, "raw": [asdict(r) for r in results]}, indent=2, default=str
        )
    )
    print(f"written to {target.relative_to(REPO)}")


# ---------------------------------------------------------------- the baseline server


def _identity(data: bytes) -> bytes:
    return data


class _Baseline:
    def __init__(self, url: str, downstream: str = "") -> None:
        self.url = libpq(url)
        self.local = threading.local()
        self.downstream = (
            BaselineClient(grpc.insecure_channel(downstream)).insert if downstream else None
        )

    def _conn(self) -> psycopg.Connection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = psycopg.connect(self.url)
            self.local.conn = conn
        return conn

    def insert(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        conn = self._conn()
        with conn.cursor() as cur:
            cur.execute("INSERT INTO bench_baseline (payload) VALUES (%s)", (request.decode(),))
        conn.commit()
        return b"ok"

    def relay(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """The floor: the downstream server's Insert first, then this server's own."""
        if self.downstream is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "started without --downstream")
        self.downstream(request, timeout=5)
        return self.insert(request, context)

    def select(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        conn = self._conn()
        with conn.cursor() as cur:
            cur.execute("SELECT payload FROM bench_baseline WHERE id = %s", (int(request),))
            row = cur.fetchone()
        conn.commit()
        return (row[0] if row else "").encode()


def prepare_baseline_table(url: str) -> None:
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, payload text NOT NULL)"
        )
        count = conn.execute("SELECT count(*) FROM bench_baseline").fetchone()
        if count is not None and count[0] < BASELINE_ROWS:
            conn.execute(
                "INSERT INTO bench_baseline (payload) SELECT md5(g::text) FROM generate_series(1, %s) g",
                (BASELINE_ROWS,),
            )


def serve_baseline(url: str, port: int = 0, max_workers: int = 32, downstream: str = "") -> None:
    prepare_baseline_table(url)
    handler = _Baseline(url, downstream)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Insert": grpc.unary_unary_rpc_method_handler(
                        handler.insert, _identity, _identity
                    ),
                    "Select": grpc.unary_unary_rpc_method_handler(
                        handler.select, _identity, _identity
                    ),
                    "Relay": grpc.unary_unary_rpc_method_handler(
                        handler.relay, _identity, _identity
                    ),
                },
            ),
        )
    )
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(json.dumps({"event": "server_started", "port": bound}), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(1))
    server.wait_for_termination()


@contextmanager
def baseline_server(url: str, downstream: str = "") -> Iterator[str]:
    """Runs the baseline server as its own process (relaying ``Relay`` calls to
    ``downstream`` if given); yields its host:port (:data:`BASELINE_PIDS` maps it to the
    process id while it runs)."""
    relay = ["--downstream", downstream] if downstream else []
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__)), "baseline-server", url, *relay],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    target = ""
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        target = f"127.0.0.1:{json.loads(line)['port']}"
        BASELINE_PIDS[target] = proc.pid
        yield target
    finally:
        BASELINE_PIDS.pop(target, None)
        proc.terminate()
        proc.wait(timeout=10)


# host:port -> pid of each baseline server running (baseline_server), for CPU accounting.
BASELINE_PIDS: dict[str, int] = {}


class BaselineClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.insert = channel.unary_unary(f"/{SERVICE}/Insert", _identity, _identity)
        self.select = channel.unary_unary(f"/{SERVICE}/Select", _identity, _identity)
        self.relay = channel.unary_unary(f"/{SERVICE}/Relay", _identity, _identity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser("baseline-server")
    server.add_argument("url")
    server.add_argument("--port", type=int, default=0)
    server.add_argument("--downstream", default="", help="host:port of the server Relay calls")
    args = parser.parse_args()
    if args.command == "baseline-server":
        serve_baseline(args.url, args.port, downstream=args.downstream)


if __name__ == "__main__":
    main()

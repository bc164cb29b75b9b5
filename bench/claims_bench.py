"""Claims benchmark (see bench/claims): many ranks claiming, renewing and committing fake shards of one plan
against a stock PostgreSQL (`max_connections = 100`), through the real queue and engine code of the workers.

A throwaway cluster is made with initdb/pg_ctl in a temporary folder on a free port (as user postgres when run
as root), so no shared server is reconfigured. Ranks are threads in a few processes, forked from this one with
their imports done (as launched worker processes have theirs before they claim); each rank opens its own engine
as a worker process does (`db.make_engine(..., short_lived=True)`: a connection is kept only while used and
0.2 s after, so it serves a commit and the next claim, and none is held while a shard is written), and every
queue call goes through `with_retries`, which waits out "too many clients" with jittered backoff. A rank first
reads its plan, as `etl.write.worker.run_worker` does (which opens its connection), then claims a shard,
"writes" it (sleeps), renews its lease half-way, commits a fake manifest, and repeats until the plan is done;
with no shard pending it waits as a worker does (2 s, or until the earliest lease ends). The processes start
together, then their ranks spread over one shard's time, as launched ranks are (srun, imports).

Processes (`--processes`, default 8): real ranks are processes, each with its own GIL, while the threads of one
process share one, so a rank whose answer has arrived may wait for the GIL behind its neighbours. More processes
of fewer threads are more faithful in that, but on this 2-core machine they were not faster. 512 ranks, same
code, alternated, load average 25-37 from other jobs: 32 processes of 16 ranks against 8 of 64 gave p99 587 and
804 ms against 389 and 177 ms; their slowest 1 % waited longer for a core (704 and 877 ms against 302 and
190 ms) and about as long off CPU (the GIL and the server: 101 and 176 ms against 180 and 42 ms); with the
other jobs mostly idle, p99 33.6 ms against 14.6 and 16.4 ms, the slowest waiting 31 ms for a core against 6-8.
128 ranks in 128 processes against 8: off CPU 18-19 ms against 32-69 ms, but waiting for a core 867-1,136 ms
against 193-224 ms. Each process adds threads the kernel must schedule and pages a fork must copy, which a 2-core
machine running the server too pays for; the GIL is taken back once per claim now (one statement), not five
times. The breakdown below shows which wait dominates, so the split can be chosen again on another machine.

A claim's latency is what its rank waits for: from the call of `with_retries(queue.claim, ...)` to its return,
connecting and refusals waited out included. `ClaimClock` splits it (engine events, the backoff sleeps of
`db.wait_out`, the kernel's per-thread scheduler statistics): before its first statement (pool checkout,
connecting, backoff), in its statements, after them (a COMMIT, returning the connection), and across those, the
thread's time on a CPU, runnable but waiting for a core, and off CPU (the server's answer, the GIL, a backoff).

Checked at the end: every shard done exactly once (one successful commit each, none lost), no operation failed
(a refused connection that was waited out is counted, not failed), claim latency p99 under 20 ms; printed: the
peak number of client connections the server saw (pg_stat_activity, polled every 10 ms), the CPU time of the
rank processes and of the server's processes, the sessions the server opened, and the machine with its load
average over the run.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from etl import db, schema
from etl.plan import get_plan
from etl.write.queue import Manifest, ShardQueue, with_retries

P99_TARGET_MS = 20.0
DEFAULT_PROCESSES = 8
POLL_SECONDS = 2.0  # a worker's wait when no shard is pending (WriteOptions.poll_seconds)


# ============================================================================================== the cluster


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        on_path = shutil.which("initdb")
        if on_path is None:
            raise SystemExit("bench/claims needs PostgreSQL's initdb and pg_ctl (/usr/lib/postgresql/*/bin)")
        return Path(on_path).parent
    return found[-1].parent


def _as_postgres(command: list[str]) -> list[str]:
    """Run as user postgres when we are root (initdb and postgres refuse to run as root)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def throwaway_cluster(max_connections: int) -> Iterator[tuple[str, Path]]:
    """A new PostgreSQL cluster with `max_connections`, stopped and removed afterwards; yields its admin URL and
    its data folder."""
    binaries, port = _pg_bin(), _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tol-claims-"))
    data = workdir / "data"
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
    try:
        subprocess.run(_as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                     "--no-sync"]), check=True, capture_output=True)
        options = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={workdir} "
                   f"-c max_connections={max_connections}")
        subprocess.run(_as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                                     str(workdir / "server.log"), "start"]), check=True, capture_output=True)
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", data
        finally:
            subprocess.run(_as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                           capture_output=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def make_plan(admin_url: str, shards: int) -> tuple[str, int]:
    """A catalog at head on the cluster with one plan of `shards` pending shards; (its URL, the plan id)."""
    admin = create_engine(db.parse_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE DATABASE claims"))
    admin.dispose()
    url = db.parse_url(admin_url).set(database="claims").render_as_string(hide_password=False)
    engine = db.make_engine(url)
    schema.upgrade(engine)
    with engine.begin() as connection:
        definition = connection.execute(text(
            "INSERT INTO split_definitions (name, seed, val_percent, train_small_percent, multiplier, increment, "
            "val_threshold, train_small_threshold) VALUES ('bench', 0, 5, 10, 1, 1, 1, 1) RETURNING id")).scalar_one()
        plan = connection.execute(text(
            "INSERT INTO shard_plans (name, split_definition_id, split, width, height, resize, quality, txt_field, "
            "out_dir, shuffle_seed, n_shards, n_samples) VALUES ('claims', :d, 'train', 224, 224, 'center-crop', "
            "95, 'taxonTag_com', '/nowhere', 0, :n, :n) RETURNING id"), {"d": definition, "n": shards}).scalar_one()
        ShardQueue(connection).add_shards(plan, [f"shard-{i:06d}.tar" for i in range(shards)], [1] * shards)
    engine.dispose()
    return url, plan


# ============================================================================================== ranks


def schedstat() -> tuple[float, float]:
    """This thread's time on a CPU and time runnable but waiting for one (seconds), from the kernel's scheduler
    statistics; (0, 0) where there are none."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as stats:
            on_cpu, waiting, _ = stats.read().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(on_cpu) / 1e9, int(waiting) / 1e9


class ClaimClock(threading.local):
    """Where the claim in this thread's hands spends its time (bench instrumentation, fed by the rank's engine
    events and by the backoff sleeps of `db.wait_out`): before its first statement (pool checkout, connecting,
    refusals waited out), in its statements (each `cursor.execute`: a round trip, and in a transaction the first
    one carries the BEGIN), after them (a COMMIT, returning the connection). The thread's time on a CPU and
    runnable but waiting for a core come from the kernel; the rest of the claim the thread was blocked: waiting
    for the server's answer, for the GIL, or out a refusal."""

    on = False

    def start(self) -> None:
        self.on, self.first_statement, self.statement_started = True, 0.0, 0.0
        self.statements, self.statement_s, self.connects, self.connect_s, self.backoff_s = 0, 0.0, 0, 0.0, 0.0
        self.connect_started: float | None = None
        self.cpu, self.runnable = schedstat()
        self.started = time.perf_counter()

    def stop(self, first: bool, since: float) -> tuple[float, ...]:
        """(wall, before the first statement, connecting, backoff, statements time, statements, after them,
        on CPU, runnable, seconds since the ranks started, first claim of its rank) in ms, counts, flags."""
        ended = time.perf_counter()
        cpu, runnable = schedstat()
        self.on = False
        first_statement = self.first_statement or ended
        return ((ended - self.started) * 1000, (first_statement - self.started) * 1000, self.connect_s * 1000,
                self.backoff_s * 1000, self.statement_s * 1000, self.statements,
                (ended - first_statement - self.statement_s) * 1000, (cpu - self.cpu) * 1000,
                (runnable - self.runnable) * 1000, time.monotonic() - since, float(first))

    def attempt_ended(self) -> None:
        if self.on and self.connect_started is not None:
            self.connect_s += time.perf_counter() - self.connect_started
            self.connect_started = None


CLOCK = ClaimClock()


def watch(engine: Engine) -> None:
    """Feed CLOCK from this engine's events."""

    def do_connect(*_args: object) -> None:
        if CLOCK.on:
            CLOCK.connects += 1
            CLOCK.connect_started = time.perf_counter()

    def connected(*_args: object) -> None:
        CLOCK.attempt_ended()

    def before(*_args: object) -> None:
        if CLOCK.on:
            CLOCK.statement_started = time.perf_counter()
            CLOCK.first_statement = CLOCK.first_statement or CLOCK.statement_started

    def after(*_args: object) -> None:
        if CLOCK.on:
            CLOCK.statements += 1
            CLOCK.statement_s += time.perf_counter() - CLOCK.statement_started

    event.listen(engine, "do_connect", do_connect)
    event.listen(engine, "connect", connected)
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)


class CountedSleeps:
    """`db.wait_out`'s `time` in the ranks' processes: its backoff sleeps (a refusal or drop waited out) count
    on CLOCK, as does the refused connection attempt before them."""

    monotonic = staticmethod(time.monotonic)

    @staticmethod
    def sleep(seconds: float) -> None:
        CLOCK.attempt_ended()
        started = time.perf_counter()
        time.sleep(seconds)
        if CLOCK.on:
            CLOCK.backoff_s += time.perf_counter() - started


def run_ranks(url: str, plan: int, first_rank: int, ranks: int, shard_seconds: float, lease: float,
              ready: Barrier, results: multiprocessing.SimpleQueue) -> None:
    """`ranks` ranks as threads of this process, each with its own short-lived-connection engine (as each worker
    process has); they start together with the other processes' (`ready`), then spread over one shard's time.
    Puts (claim records, see ClaimClock.stop; committed shard ids; refusals; errors)."""
    refusals = [0]
    counted = db.is_transient

    def counting(exc: BaseException) -> bool:  # count what was waited out (bench instrumentation only)
        transient = counted(exc)
        if transient:
            refusals[0] += 1
        return transient

    db.is_transient = counting  # type: ignore[assignment]
    db.time = CountedSleeps  # type: ignore[assignment]
    claims: list[tuple[float, ...]] = []
    committed: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    ready.wait()
    since = time.monotonic()

    def rank(number: int) -> None:
        worker = f"bench:{os.getpid()}:{number}"
        rng = random.Random(number)
        engine = db.make_engine(url, short_lived=True, wait_seconds=300)  # as one worker process opens it
        watch(engine)
        queue = ShardQueue(engine)
        time.sleep(rng.uniform(0, shard_seconds))
        # As `run_worker` does before its first claim: read the plan (this opens the rank's connection, which
        # the claim then reuses, as it does in a worker).
        with_retries(get_plan, engine, "claims")
        first = True
        try:
            while True:
                CLOCK.start()
                held = with_retries(queue.claim, plan, worker, lease, 3)
                record = CLOCK.stop(first, since)
                if held is None:  # wait as `etl.write.worker.claim_and_write` does, then try again
                    remaining, earliest = with_retries(queue.unfinished, plan)
                    if remaining == 0:
                        return
                    time.sleep(POLL_SECONDS if earliest is None else
                               min(POLL_SECONDS, max(0.05, earliest - time.time())))
                    continue
                with lock:
                    claims.append(record)
                first = False
                time.sleep(shard_seconds / 2)
                renewed = with_retries(queue.renew, held, lease)
                time.sleep(shard_seconds / 2)
                manifest = Manifest(n_samples=1, n_bytes=1, sha256="0" * 64, md5="0" * 32, duration_s=shard_seconds)
                if renewed and with_retries(queue.commit, held, manifest, [], lambda: None):
                    with lock:
                        committed.append(held.shard_id)
        except Exception as exc:  # a failure is a result of the benchmark, reported by the parent
            with lock:
                errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        finally:
            engine.dispose()

    threads = [threading.Thread(target=rank, args=(first_rank + n,)) for n in range(ranks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    used = os.times()
    results.put((claims, committed, refusals[0], errors, used.user + used.system))


class ConnectionPeak:
    """Polls the server's client connections (pg_stat_activity) in a thread; `peak` is the most seen. Also
    samples the machine's 1-minute load average every few seconds (`load_average`: their mean)."""

    def __init__(self, admin_url: str, interval: float = 0.01) -> None:
        self.engine = create_engine(db.parse_url(admin_url), isolation_level="AUTOCOMMIT", pool_size=1)
        self.interval, self.peak, self.stop = interval, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.loads: list[float] = []

    def load_average(self) -> float:
        return statistics.fmean(self.loads) if self.loads else os.getloadavg()[0]

    def _run(self) -> None:
        next_load = time.monotonic()
        with self.engine.connect() as connection:
            while not self.stop.wait(self.interval):
                if time.monotonic() >= next_load:
                    self.loads.append(os.getloadavg()[0])
                    next_load += 5.0
                seen = connection.execute(text(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")).scalar_one()
                self.peak = max(self.peak, int(seen) - 1)  # not counting this poller's own connection

    def __enter__(self) -> ConnectionPeak:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.engine.dispose()


def percentile(values: list[float], share: float) -> float:
    """The `share` (0-1) percentile, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def server_cpu_seconds(data: Path) -> float:
    """CPU seconds of the cluster's processes so far: the postmaster's own and its exited children's (the
    backends it reaped), and its live children's."""
    try:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")

    def times(pid: int, children: bool) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return sum(int(value) for value in fields[11:15 if children else 13]) / tick

    live = Path(f"/proc/{postmaster}/task/{postmaster}/children")
    try:
        kids = [int(pid) for pid in live.read_text().split()]
    except OSError:
        kids = []
    return times(postmaster, True) + sum(times(kid, False) for kid in kids)


BREAKDOWN = (  # (label, field of a ClaimClock record)
    ("the claim, as its rank waits for it", 0),
    ("  before its first statement (pool checkout, connecting, refusals waited out)", 1),
    ("    of which connecting (new connections, refused attempts)", 2),
    ("    of which backing off after a refusal", 3),
    ("  in its statements (cursor.execute: round trips, a BEGIN with the first)", 4),
    ("  after them (a COMMIT, returning the connection to its pool)", 6),
    ("  on a CPU", 7),
    ("  runnable, waiting for a core", 8),
    ("  off CPU, not runnable: the server's answer, the GIL, a backoff", -1),
)


def breakdown(claims: list[tuple[float, ...]], spread: float) -> list[str]:
    """Lines splitting the claim time: the median claim's parts (medians) and the slowest 1 %'s (means)."""
    if not claims:
        return []
    cut = percentile([claim[0] for claim in claims], 0.99)
    slow = [claim for claim in claims if claim[0] >= cut]

    def part(claim: tuple[float, ...], field: int) -> float:
        return claim[0] - claim[7] - claim[8] if field < 0 else claim[field]

    lines = [f"where a claim's time goes (ms): median of all claims | mean of the slowest 1 % ({len(slow)} "
             f"claims of {cut:.1f} ms or more)"]
    for label, field in BREAKDOWN:
        lines.append(f"  {label:<80} {statistics.median(part(c, field) for c in claims):7.1f} | "
                     f"{statistics.fmean(part(c, field) for c in slow):7.1f}")
    statements = statistics.fmean(claim[5] for claim in claims)
    connecting = sum(claim[2] > 0 for claim in slow)
    starting = sum(claim[9] < spread for claim in slow)
    lines.append(f"  statements per claim: {statements:.2f}; of the slowest 1 %: {connecting} connected or were "
                 f"refused, {sum(claim[10] for claim in slow):.0f} were a rank's first claim, {starting} came in "
                 f"the first {spread:g} s, while the ranks started")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=512)
    parser.add_argument("--shards", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=DEFAULT_PROCESSES,
                        help=f"processes the ranks are spread over (default {DEFAULT_PROCESSES})")
    parser.add_argument("--shard-seconds", type=float, default=20.0, help="how long a rank 'writes' a shard")
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--max-connections", type=int, default=100)
    args = parser.parse_args()
    processes = max(1, min(args.processes, args.ranks))

    with throwaway_cluster(args.max_connections) as (admin_url, data):
        url, plan = make_plan(admin_url, args.shards)
        with create_engine(db.parse_url(admin_url)).connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
        # Rank processes are forked from this one (no thread runs yet), so they start with their imports done, as
        # launched worker processes have theirs before they claim; all start together (`ready`), then spread.
        context = multiprocessing.get_context("fork")
        results, ready = context.SimpleQueue(), context.Barrier(processes + 1)
        per = [args.ranks // processes + (1 if n < args.ranks % processes else 0) for n in range(processes)]
        starts = [sum(per[:n]) for n in range(processes)]
        workers = [context.Process(target=run_ranks, args=(url, plan, starts[n], per[n], args.shard_seconds,
                                                           args.lease, ready, results)) for n in range(processes)]
        for process in workers:
            process.start()
        with ConnectionPeak(admin_url) as peak:
            server_cpu = server_cpu_seconds(data)
            ready.wait()
            started = time.monotonic()
            gathered = [results.get() for _ in workers]
            seconds = time.monotonic() - started
            server_cpu = server_cpu_seconds(data) - server_cpu
        for process in workers:
            process.join()
        engine = db.make_engine(url)
        with engine.connect() as connection:
            states = dict(connection.execute(text(
                "SELECT state, COUNT(*) FROM shards WHERE plan_id = :p GROUP BY state"), {"p": plan}).all())
            sessions = connection.execute(text(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()")).scalar_one()
        engine.dispose()

    claims = [claim for batch, *_ in gathered for claim in batch]
    latencies = [claim[0] for claim in claims if not claim[10]]
    first_claims = [claim[0] for claim in claims if claim[10]]
    every_claim = latencies + first_claims
    committed = [shard for _, batch, *_ in gathered for shard in batch]
    refusals = sum(result[2] for result in gathered)
    errors = [error for *_, batch, _ in gathered for error in batch]
    client_cpu = sum(result[4] for result in gathered)  # the rank processes' own, their start-up included
    duplicates = len(committed) - len(set(committed))
    lost = args.shards - len(set(committed))
    p99 = percentile(every_claim, 0.99) if every_claim else float("inf")
    too_many = sum("too many clients" in error for error in errors)

    print(f"claims benchmark: {args.ranks} ranks ({processes} processes of {max(per)} threads or fewer, an "
          f"engine each as a worker process has) on a {args.shards:,}-shard plan, shard 'written' in "
          f"{args.shard_seconds:g} s, lease {args.lease:g} s")
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, load average "
          f"{peak.load_average():.1f} (mean of the run's 1-minute figures), Python {platform.python_version()}, "
          f"PostgreSQL {version} (throwaway cluster, max_connections = {args.max_connections})")
    print(f"finished in {seconds:.1f} s: {len(every_claim):,} claims, {len(committed):,} commits "
          f"({len(committed) / seconds:,.0f}/s); shard states {states}")
    print(f"CPU used: ranks {client_cpu:.0f} s, server {server_cpu:.0f} s ({(client_cpu + server_cpu) / seconds:.2f} "
          f"of {os.cpu_count()} CPUs; {(client_cpu + server_cpu) / max(len(committed), 1) * 1000:.1f} ms a shard); "
          f"server sessions opened: {sessions:,} ({sessions / max(len(committed), 1):.2f} a shard)")
    print(f"claim latency, all claims: p50 {statistics.median(every_claim):.1f} ms, p99 {p99:.1f} ms, "
          f"max {max(every_claim):.1f} ms")
    print(f"  each rank's first claim (right after it read the plan): p50 {statistics.median(first_claims):.1f} ms, "
          f"p99 {percentile(first_claims, 0.99):.1f} ms; later claims (after a commit): p50 "
          f"{statistics.median(latencies) if latencies else 0:.1f} ms, "
          f"p99 {percentile(latencies, 0.99) if latencies else 0:.1f} ms")
    for line in breakdown(claims, args.shard_seconds):
        print(line)
    print(f"peak server connections (pg_stat_activity, client backends): {peak.peak}")
    print(f"connection refusals and drops waited out: {refusals}; operations failed: {len(errors)}"
          + (f" (e.g. {errors[0]})" if errors else ""))
    checks = {
        "no 'too many clients' failure": too_many == 0 and not errors,
        "no duplicate shard": duplicates == 0,
        "no lost shard": lost == 0 and states.get("done", 0) == args.shards,
        f"claim p99 under {P99_TARGET_MS:g} ms": p99 < P99_TARGET_MS,
    }
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}: {name}")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()

"""Claims benchmark (see bench/claims): many ranks claiming, renewing and committing fake shards of one plan
against a stock PostgreSQL (`max_connections = 100`), through the real queue and engine code of the workers.

A throwaway cluster is made with initdb/pg_ctl in a temporary folder on a free port (as user postgres when run
as root), so no shared server is reconfigured. Ranks are threads in a few processes; each rank opens its own
engine as a worker process does (`db.make_engine(..., short_lived=True)`: a connection is kept only while used
and 0.2 s after, so it serves a commit and the next claim, and none is held while a shard is written),
and every queue call goes through `with_retries`, which waits out "too many clients" with jittered backoff.
A rank first reads its plan, as `etl.write.worker.run_worker` does (which opens its connection), then claims a
shard, "writes" it (sleeps), renews its lease half-way, commits a fake manifest, and repeats
until the plan is done. Ranks start spread over one shard's time, as launched ranks are (srun, imports).

Checked at the end: every shard done exactly once (one successful commit each, none lost), no operation failed
(a refused connection that was waited out is counted, not failed), claim latency p99 under 20 ms; printed: the
peak number of client connections the server saw (pg_stat_activity, polled every 10 ms), and the machine.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from etl import db, schema
from etl.plan import get_plan
from etl.write.queue import Manifest, ShardQueue, with_retries

P99_TARGET_MS = 20.0


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
def throwaway_cluster(max_connections: int) -> Iterator[str]:
    """A new PostgreSQL cluster with `max_connections`, stopped and removed afterwards; yields its admin URL."""
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
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
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


def run_ranks(url: str, plan: int, first_rank: int, ranks: int, shard_seconds: float, lease: float,
              results: multiprocessing.SimpleQueue) -> None:
    """`ranks` ranks as threads of this process, sharing one short-lived-connection engine (as a worker's
    main thread and lease thread do); puts (claim latencies in ms, committed shard ids, refusals, errors)."""
    refusals = [0]
    counted = db.is_transient

    def counting(exc: BaseException) -> bool:  # count what was waited out (bench instrumentation only)
        transient = counted(exc)
        if transient:
            refusals[0] += 1
        return transient

    db.is_transient = counting  # type: ignore[assignment]
    latencies: list[float] = []
    first_claims: list[float] = []
    committed: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def rank(number: int) -> None:
        worker = f"bench:{os.getpid()}:{number}"
        rng = random.Random(number)
        engine = db.make_engine(url, short_lived=True, wait_seconds=300)  # as one worker process opens it
        queue = ShardQueue(engine)
        time.sleep(rng.uniform(0, shard_seconds))
        # As `run_worker` does before its first claim: read the plan (this opens the rank's connection, which
        # the claim then reuses, as it does in a worker).
        with_retries(get_plan, engine, "claims")
        first = True
        try:
            while True:
                started = time.perf_counter()
                held = with_retries(queue.claim, plan, worker, lease, 3)
                claimed_ms = (time.perf_counter() - started) * 1000
                if held is None:
                    remaining, _ = with_retries(queue.unfinished, plan)
                    if remaining == 0:
                        return
                    time.sleep(0.2)
                    continue
                with lock:
                    (first_claims if first else latencies).append(claimed_ms)
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
    results.put((latencies, first_claims, committed, refusals[0], errors))


class ConnectionPeak:
    """Polls the server's client connections (pg_stat_activity) in a thread; `peak` is the most seen."""

    def __init__(self, admin_url: str, interval: float = 0.01) -> None:
        self.engine = create_engine(db.parse_url(admin_url), isolation_level="AUTOCOMMIT", pool_size=1)
        self.interval, self.peak, self.stop = interval, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.engine.connect() as connection:
            while not self.stop.wait(self.interval):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=512)
    parser.add_argument("--shards", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=8, help="processes the ranks are spread over")
    parser.add_argument("--shard-seconds", type=float, default=20.0, help="how long a rank 'writes' a shard")
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--max-connections", type=int, default=100)
    args = parser.parse_args()
    processes = max(1, min(args.processes, args.ranks))

    with throwaway_cluster(args.max_connections) as admin_url:
        url, plan = make_plan(admin_url, args.shards)
        with create_engine(db.parse_url(admin_url)).connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
        context = multiprocessing.get_context("spawn")
        results = context.SimpleQueue()
        per = [args.ranks // processes + (1 if n < args.ranks % processes else 0) for n in range(processes)]
        starts = [sum(per[:n]) for n in range(processes)]
        started = time.monotonic()
        with ConnectionPeak(admin_url) as peak:
            workers = [context.Process(target=run_ranks, args=(url, plan, starts[n], per[n], args.shard_seconds,
                                                               args.lease, results)) for n in range(processes)]
            for process in workers:
                process.start()
            gathered = [results.get() for _ in workers]
            for process in workers:
                process.join()
        seconds = time.monotonic() - started
        engine = db.make_engine(url)
        with engine.connect() as connection:
            states = dict(connection.execute(text(
                "SELECT state, COUNT(*) FROM shards WHERE plan_id = :p GROUP BY state"), {"p": plan}).all())
        engine.dispose()

    latencies = [ms for batch, *_ in gathered for ms in batch]
    first_claims = [ms for _, batch, *_ in gathered for ms in batch]
    every_claim = latencies + first_claims
    committed = [shard for _, _, batch, _, _ in gathered for shard in batch]
    refusals = sum(count for *_, count, _ in gathered)
    errors = [error for *_, batch in gathered for error in batch]
    duplicates = len(committed) - len(set(committed))
    lost = args.shards - len(set(committed))
    p99 = percentile(every_claim, 0.99) if every_claim else float("inf")
    too_many = sum("too many clients" in error for error in errors)

    print(f"claims benchmark: {args.ranks} ranks ({processes} processes of threads, an engine each as a worker "
          f"process has) on a {args.shards:,}-shard plan, shard 'written' in {args.shard_seconds:g} s, "
          f"lease {args.lease:g} s")
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, PostgreSQL {version} (throwaway "
          f"cluster, max_connections = {args.max_connections})")
    print(f"finished in {seconds:.1f} s: {len(every_claim):,} claims, {len(committed):,} commits "
          f"({len(committed) / seconds:,.0f}/s); shard states {states}")
    print(f"claim latency, all claims: p50 {statistics.median(every_claim):.1f} ms, p99 {p99:.1f} ms, "
          f"max {max(every_claim):.1f} ms")
    print(f"  each rank's first claim (right after it read the plan): p50 {statistics.median(first_claims):.1f} ms, "
          f"p99 {percentile(first_claims, 0.99):.1f} ms; later claims (after a commit): p50 "
          f"{statistics.median(latencies) if latencies else 0:.1f} ms, "
          f"p99 {percentile(latencies, 0.99) if latencies else 0:.1f} ms")
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

"""Running shard workers: local processes, MPI ranks, signals and time limits.

Every worker — a local process or an MPI rank — runs the same loop (`shards.run_worker`): claim a shard from
the catalog, write it, repeat. MPI only names the ranks and gathers the summary at the end; nothing after
start-up waits on another rank, so a dead rank cannot hang the job (its claims expire and others take them).

On SIGTERM (Slurm's warning before the time limit, or scancel) a worker stops claiming, finishes the shard in
hand if it can within the grace time, otherwise abandons it and releases the claim without counting an
attempt, and exits 0. A worker also stops claiming when the job's end (SLURM_JOB_END_TIME) is nearer than
the time a shard takes.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from etl import db
from etl.errors import TolError
from etl.reader import ImageReader, source_roots
from etl.shards import (
    DEFAULT_LEASE_SECONDS,
    WorkerContext,
    WorkerStats,
    get_plan,
    run_worker,
    with_retries,
    write_shard_index,
)

NETWORK_FILESYSTEMS = {"nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smbfs", "ceph", "fuse.glusterfs",
                       "glusterfs", "panfs", "fuse.sshfs", "9p"}


@dataclass(frozen=True)
class WriteOptions:
    """How workers run: catalog URL, plan, where sources and caches are, lease and retry settings."""

    database_url: str
    plan_name: str
    roots: dict[str, Path | None]
    cache_dir: Path
    eol_access: str = "restage"
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_attempts: int = 3
    grace_seconds: float = 60.0
    poll_seconds: float = 2.0


def write_options(settings, plan_name: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                  max_attempts: int = 3, grace_seconds: float = 60.0) -> WriteOptions:
    """WriteOptions for `plan_name` from the effective configuration (database, source roots, cache)."""
    return WriteOptions(
        database_url=settings.database_url, plan_name=plan_name,
        roots={source: settings.path(f"{source}_root") for source in ("inat21", "eol", "bioscan")},
        cache_dir=Path(settings.get_value("cache_dir")).resolve(), eol_access=settings.get_value("eol_access"),
        lease_seconds=lease_seconds,
        max_attempts=max_attempts, grace_seconds=grace_seconds)


def filesystem_type(path: Path) -> str:
    """The filesystem type of the mount holding `path` (from /proc/mounts; '' if unknown)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    target = str(path.resolve())
    best, best_type = "", ""
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3:
            mount_point = parts[1].replace("\\040", " ")
            if (target == mount_point or target.startswith(mount_point.rstrip("/") + "/")) \
                    and len(mount_point) >= len(best):
                best, best_type = mount_point, parts[2]
    return best_type


def check_sqlite_for_cluster(url: str, hosts: set[str] | None = None) -> None:
    """Refuse SQLite where it cannot work: on a network filesystem, or with ranks on several nodes."""
    parsed = db.parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    path = db.sqlite_file(parsed)
    if path is not None:
        kind = filesystem_type(path.parent)
        if kind.lower() in NETWORK_FILESYSTEMS:
            raise TolError(f"the SQLite catalog {path} is on a network filesystem ({kind}), where its locking is "
                           "unsafe for concurrent workers: use PostgreSQL (postgresql+psycopg://…)")
    if hosts is not None and len(hosts) > 1:
        raise TolError(f"workers run on {len(hosts)} nodes ({', '.join(sorted(hosts))}) but the catalog is SQLite, "
                       "which only one machine can share: use PostgreSQL (postgresql+psycopg://…)")


def job_end_time() -> float | None:
    """The Slurm job's end as a Unix time, if known."""
    value = os.environ.get("SLURM_JOB_END_TIME")
    try:
        return float(value) if value else None
    except ValueError:
        return None


class Signals:
    """SIGTERM/SIGINT handling: stop claiming at once; abandon the shard in hand after the grace time."""

    def __init__(self, grace_seconds: float) -> None:
        self.stop = threading.Event()
        self.abandon = threading.Event()
        self.grace_seconds = grace_seconds
        self._timer: threading.Timer | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, _frame) -> None:
        if self.stop.is_set():
            self.abandon.set()  # a second signal: give the shard back now
            return
        self.stop.set()
        self._timer = threading.Timer(self.grace_seconds, self.abandon.set)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        """Stop the grace timer and give the signals back to whoever handled them before."""
        if self._timer is not None:
            self._timer.cancel()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def run_one_worker(options: WriteOptions, rank: int | None = None, size: int | None = None) -> WorkerStats:
    """One worker in this process: claim and write shards until the plan is finished or told to stop."""
    from etl.shards import worker_name

    engine = db.make_engine(options.database_url)
    signals = Signals(options.grace_seconds)
    signals.install()
    try:
        plan = with_retries(get_plan, engine, options.plan_name)
        reader = ImageReader(with_retries(source_roots, engine, options.roots), options.cache_dir,
                             options.eol_access)
        context = WorkerContext(engine, plan, Path(plan.out_dir), reader, worker_name(rank, size),
                                options.lease_seconds, options.max_attempts, signals.stop, signals.abandon)
        end = job_end_time()

        def time_left_for_a_shard(stats: WorkerStats) -> bool:
            # Claim only if the slowest shard so far (with a margin) still fits before the job ends.
            return end is None or time.time() + 1.2 * stats.slowest_shard_s < end

        stats = run_worker(context, options.poll_seconds, should_claim=time_left_for_a_shard)
        reader.close()
        return stats
    finally:
        signals.cancel()
        engine.dispose()


def _process_main(options: WriteOptions, results) -> None:
    results.put(run_one_worker(options).as_dict())


def write_locally(options: WriteOptions, workers: int) -> list[dict]:
    """Run `workers` worker processes on this machine (inline when 1) and return their stats.

    On Ctrl-C or SIGTERM the workers get the signal too: they finish or release their shards and exit.
    """
    check_sqlite_for_cluster(options.database_url)
    if workers <= 1:
        return [run_one_worker(options).as_dict()]
    context = multiprocessing.get_context("forkserver")
    results = context.SimpleQueue()
    processes = [context.Process(target=_process_main, args=(options, results), name=f"tol-worker-{n}")
                 for n in range(workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join()
        raise
    stats = []
    while not results.empty():
        stats.append(results.get())
    failed = [p.name for p in processes if p.exitcode not in (0, None)]
    if failed:
        raise TolError(f"worker processes {', '.join(failed)} failed; see their messages above")
    return stats


def finish(options: WriteOptions) -> Path | None:
    """After the workers: write the wids shard index if every shard is done."""
    engine = db.make_engine(options.database_url)
    try:
        plan = get_plan(engine, options.plan_name)
        return write_shard_index(engine, plan, Path(plan.out_dir))
    finally:
        engine.dispose()

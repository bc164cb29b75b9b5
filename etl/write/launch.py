"""`tol shards write`: a plan's workers as local processes or MPI ranks, and one report of what they did.

With MPI (srun --mpi=pmi2, mpiexec) each rank is one worker. The only collective is at start-up (every rank
learns the hosts, so SQLite can be refused when ranks span nodes). The report is read from the catalog by
rank 0 once no shard is left unfinished, so a rank that dies cannot hang the others: its claims expire and
the surviving ranks take them over.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.queues import SimpleQueue
from pathlib import Path
from typing import Any

from etl import db
from etl.errors import TolError, WorkLeftError
from etl.plan import Plan, get_plan
from etl.progress import Progress
from etl.write.queue import FailedShard, ShardQueue, ShardState, WorkerRun, plural
from etl.write.sidecars import write_sidecars
from etl.write.worker import CircuitOpen, WorkerStats, WriteOptions, run_worker

MPI_ENVIRONMENT = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smbfs", "ceph", "fuse.glusterfs",
                       "glusterfs", "panfs", "fuse.sshfs", "9p"}


def mpi_world() -> Any:
    """MPI.COMM_WORLD when this process was started as an MPI rank, else None (MPI is not initialised)."""
    if not any(name in os.environ for name in MPI_ENVIRONMENT):
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD


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


def _process_main(options: WriteOptions, results: SimpleQueue[WorkerStats | TolError]) -> None:
    # An error every worker meets alike (a plan or catalog gone) goes back to the parent, which says it once.
    try:
        results.put(run_worker(options))
    except TolError as error:
        results.put(error)


def run_local_workers(options: WriteOptions, workers: int) -> list[WorkerStats]:
    """Run `workers` worker processes on this machine (inline when 1) and return their stats.

    On Ctrl-C or SIGTERM the workers get the signal too: they finish or release their shards and exit.
    """
    check_sqlite_for_cluster(options.database_url)
    if workers <= 1:
        return [run_worker(options)]
    context = multiprocessing.get_context("forkserver")
    results: SimpleQueue[WorkerStats | TolError] = context.SimpleQueue()
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
    stats: list[WorkerStats] = []
    errors: dict[str, TolError] = {}
    while not results.empty():
        result = results.get()
        if isinstance(result, TolError):
            errors.setdefault(str(result), result)
        else:
            stats.append(result)
    if errors:
        raise next(iter(errors.values()))
    failed = [p.name for p in processes if p.exitcode not in (0, None)]
    if failed:
        raise TolError(f"worker processes {', '.join(failed)} failed; see their messages above")
    return stats


def write_shard_index(queue: ShardQueue, plan: Plan) -> Path | None:
    """Write the sidecars of a finished plan (`sizes.json`, `__len__`, wids' `shardindex.json`, the dataset
    card) into its folder; returns the shard index's path (None while shards are not all done)."""
    rows = queue.shards(plan.id)
    if not rows or any(row.state != "done" for row in rows):
        return None
    write_sidecars(Path(plan.out_dir), plan, rows)
    return Path(plan.out_dir) / "shardindex.json"


@dataclass(frozen=True)
class WriteReport:
    """What a write run did: per worker, the shards it finished during the run (from the catalog, so every MPI
    rank is in it), the plan's shards by state afterwards, and the shard index if the plan is complete."""

    plan_name: str
    wall_seconds: float
    workers: list[WorkerRun]
    states: dict[ShardState, int]
    shard_index: Path | None
    images_per_second: float = 0.0
    failed: tuple[FailedShard, ...] = ()
    # Claims this process's workers lost to another worker (their results discarded): a sign of leases too
    # short for the shards, or of stalled workers. Only the reporting process's own workers are counted.
    lost_leases: int = 0
    # Shards this process's workers gave back, attempts unchanged, because of a fault of the environment (a
    # source root away, a full disk) that they then waited out.
    environment_faults: int = 0
    # Why this process's workers stopped claiming early (the circuit breaker: a run of shard failures of one kind).
    stopped: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every shard of the plan is done."""
        return sum(self.states.values()) == self.states["done"]

    def lines(self) -> list[str]:
        """The report as printed by `tol shards write` and `tol run`: the workers that finished shards, the
        total (its rate computed as `tol status` computes it), and one line per failed shard."""
        lines = [f"  {worker.worker}: {plural(worker.shards, 'shard')}, {plural(worker.samples, 'sample')}, "
                 f"{plural(worker.image_errors, 'image error')}" for worker in self.workers if worker.shards]
        shards = sum(w.shards for w in self.workers)
        samples = sum(w.samples for w in self.workers)
        errors = sum(w.image_errors for w in self.workers)
        s = self.states
        lines.append(f"{self.plan_name}: wrote {plural(shards, 'shard')}, {plural(samples, 'sample')}, "
                     f"{plural(errors, 'image error')} in {self.wall_seconds:.1f} s "
                     f"({self.images_per_second:,.1f} images/s); plan now {s['done']} done, "
                     f"{s['pending']} pending, {s['claimed']} claimed, {s['failed']} failed")
        lines += [failed.line() for failed in self.failed]
        if self.lost_leases:
            lines.append(f"{plural(self.lost_leases, 'lost lease')}: claims another worker took over while this "
                         "run held them; their results were discarded")
        lines += [f"circuit breaker: {reason}" for reason in self.stopped]
        if self.environment_faults:
            lines.append(f"{plural(self.environment_faults, 'shard')} given back for a fault of the environment "
                         "(source or disk away), then written after waiting it out")
        if self.shard_index:
            lines.append(f"shard index: {self.shard_index}")
        return lines

    def check_complete(self) -> None:
        """Raise `WorkLeftError` (exit 3) naming what is left and the command to go on, unless all is done."""
        if self.complete:
            return
        s, name = self.states, self.plan_name
        if s["failed"]:
            raise WorkLeftError(f"plan {name}: {plural(s['failed'], 'shard')} failed (listed above); retry with "
                                f"`tol shards retry {name} && tol shards write {name}`")
        left = s["pending"] + s["claimed"]
        raise WorkLeftError(f"plan {name}: {plural(left, 'shard')} not written yet; resume with "
                            f"`tol shards write {name}`")


def _report(options: WriteOptions, started: float, stats: list[WorkerStats]) -> WriteReport:
    """After the workers: write the shard index if every shard is done, and read what the run did."""
    engine = db.make_engine(options.database_url)
    try:
        plan = get_plan(engine, options.plan_name)
        queue = ShardQueue(engine)
        index = write_shard_index(queue, plan)
        return WriteReport(plan.name, time.time() - started, queue.finished_since(plan.id, started),
                           queue.states(plan.id), index, queue.rate_since(plan.id, started),
                           tuple(queue.failed(plan.id)), sum(s.lost for s in stats),
                           sum(s.environment_faults for s in stats),
                           tuple(s.stopped_by for s in stats if s.stopped_by))
    finally:
        engine.dispose()


def write_plan(options: WriteOptions, workers: int, *, progress: bool = False) -> WriteReport | None:
    """Write the plan's shards with MPI ranks if started under MPI, else with `workers` local processes.

    With `progress`, the launching process (rank 0 under MPI) shows the whole plan's progress, read from the
    catalog, while the workers run. Returns the report of the whole run, or None on MPI ranks other than 0
    (rank 0 reports for all).
    """
    started = time.time()
    world = mpi_world()
    if world is None or world.Get_size() == 1:
        stats: list[WorkerStats] = []
        if _unfinished(options):
            with plan_progress(options, enabled=progress):
                stats = run_local_workers(options, workers)
        return _report(options, started, stats)
    rank, size = world.Get_rank(), world.Get_size()
    hosts = set(world.allgather(socket.gethostname()))
    check_sqlite_for_cluster(options.database_url, hosts)
    stats = []
    if _unfinished(options):
        with plan_progress(options, enabled=progress and rank == 0):
            stats = [run_worker(options, rank, size)]
    if rank != 0:
        stopped = [s.stopped_by for s in stats if s.stopped_by]
        if stopped:  # rank 0 reports the plan; this rank still exits non-zero
            raise CircuitOpen(stopped[0])
        return None
    return _report(options, started, stats)


def reopen_for_repair(options: WriteOptions) -> int:
    """Set the plan's done shards holding image errors whose cause may have passed (unreadable, missing file,
    timeout) back to pending, to be written again; how many."""
    from etl.write.faults import shards_to_repair

    engine = db.make_engine(options.database_url)
    try:
        queue = ShardQueue(engine)
        plan = get_plan(engine, options.plan_name)
        return queue.reopen_done(shards_to_repair(queue.done_image_errors(plan.id)),
                                 "repair: image errors whose cause may have passed")
    finally:
        engine.dispose()


PROGRESS_POLL_SECONDS = 2.0


@contextmanager
def plan_progress(options: WriteOptions, *, enabled: bool) -> Iterator[None]:
    """While the body runs, show the plan's shards done and samples written, read from the catalog every
    PROGRESS_POLL_SECONDS by a thread of this process (so every worker and rank is counted, wherever it runs)."""
    if not enabled:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=_show_plan_progress, args=(options, stop), name="tol-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _show_plan_progress(options: WriteOptions, stop: threading.Event) -> None:
    engine = db.make_engine(options.database_url)
    try:
        plan = get_plan(engine, options.plan_name)
        queue = ShardQueue(engine)
        with Progress(plan.n_shards, "shards", f"write {plan.name}", enabled=True) as progress:
            progress.set(queue.states(plan.id)["done"], queue.samples_written(plan.id))
            while True:
                stopped = stop.wait(PROGRESS_POLL_SECONDS)
                progress.set(queue.states(plan.id)["done"], queue.samples_written(plan.id))
                if stopped:  # the last reading shows where the run ended
                    break
    except Exception:  # progress is a courtesy: a failed read must not stop or fail the write
        pass
    finally:
        engine.dispose()


def _unfinished(options: WriteOptions) -> int:
    """Shards of the plan not yet done or failed (an unknown plan is a one-line error, raised here once)."""
    engine = db.make_engine(options.database_url)
    try:
        plan = get_plan(engine, options.plan_name)
        return ShardQueue(engine).unfinished(plan.id)[0]
    finally:
        engine.dispose()

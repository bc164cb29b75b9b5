"""`tol shards write` under MPI, under Slurm, or as plain local processes.

With MPI (srun --mpi=pmi2, mpiexec) each rank is one worker. The only collective is at start-up (every rank
learns the hosts, so SQLite can be refused when ranks span nodes). The summary is read from the catalog by
rank 0 once no shard is left unfinished, so a rank that dies cannot hang the others: its claims expire and
the surviving ranks take them over.
"""

from __future__ import annotations

import os
import socket
import sys
import time

from sqlalchemy import text

from etl import db
from etl.workers import WriteOptions, check_sqlite_for_cluster, finish, run_one_worker, write_locally

MPI_ENVIRONMENT = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


def mpi_world():
    """MPI.COMM_WORLD when this process was started as an MPI rank, else None (MPI is not initialised)."""
    if not any(name in os.environ for name in MPI_ENVIRONMENT):
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD


def summary(options: WriteOptions, since: float, wall_seconds: float) -> list[str]:
    """Per-worker and total figures of the shards finished since `since`, read from the catalog."""
    engine = db.make_engine(options.database_url, readonly=True)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("""
                SELECT s.worker, COUNT(*), COALESCE(SUM(s.n_samples), 0), COALESCE(SUM(s.duration_s), 0),
                       (SELECT COUNT(*) FROM image_errors AS e JOIN shards AS x ON x.id = e.shard_id
                        WHERE x.worker = s.worker AND x.plan_id = s.plan_id AND x.state = 'done'
                          AND x.done_at >= :since)
                FROM shards AS s JOIN shard_plans AS p ON p.id = s.plan_id
                WHERE p.name = :plan AND s.state = 'done' AND s.done_at >= :since
                GROUP BY s.worker, s.plan_id ORDER BY s.worker"""), {"plan": options.plan_name, "since": since}).all()
            states = dict(connection.execute(text(
                "SELECT s.state, COUNT(*) FROM shards AS s JOIN shard_plans AS p ON p.id = s.plan_id "
                "WHERE p.name = :plan GROUP BY s.state"), {"plan": options.plan_name}).all())
    finally:
        engine.dispose()
    lines = []
    total_shards = total_samples = total_errors = 0
    for worker, shards, samples, busy, errors in rows:
        rate = samples / busy if busy else 0.0
        lines.append(f"  {worker}: {shards} shards, {samples:,} samples, {errors} image errors, {rate:,.1f} images/s")
        total_shards += shards
        total_samples += samples
        total_errors += errors
    rate = total_samples / wall_seconds if wall_seconds > 0 else 0.0
    lines.append(f"{options.plan_name}: wrote {total_shards} shards, {total_samples:,} samples, {total_errors} image "
                 f"errors in {wall_seconds:.1f} s ({rate:,.1f} images/s); plan now {states.get('done', 0)} done, "
                 f"{states.get('pending', 0)} pending, {states.get('claimed', 0)} claimed, "
                 f"{states.get('failed', 0)} failed")
    return lines


def write(options: WriteOptions, workers: int) -> list[str]:
    """Write the plan's shards with MPI ranks if started under MPI, else with `workers` local processes.

    Returns the summary lines to print (empty on ranks other than 0).
    """
    started = time.time()
    world = mpi_world()
    if world is None or world.Get_size() == 1:
        for stats in write_locally(options, workers):
            print(f"worker {stats['worker']}: {stats['shards']} shards, {stats['samples']} samples, "
                  f"{stats['errors']} image errors, {stats['lost']} lost leases", file=sys.stderr, flush=True)
        index = finish(options)
        lines = summary(options, started, time.time() - started)
        if index:
            lines.append(f"shard index: {index}")
        return lines
    rank, size = world.Get_rank(), world.Get_size()
    hosts = set(world.allgather(socket.gethostname()))
    check_sqlite_for_cluster(options.database_url, hosts)
    stats = run_one_worker(options, rank, size)
    print(f"rank {rank}/{size} on {socket.gethostname()}: {stats.shards} shards, {stats.samples} samples, "
          f"{stats.errors} image errors, {stats.lost} lost leases", file=sys.stderr, flush=True)
    if rank != 0:
        return []
    index = finish(options)
    lines = summary(options, started, time.time() - started)
    if index:
        lines.append(f"shard index: {index}")
    return lines

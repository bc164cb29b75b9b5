"""Chaos: four workers on one plan of 200+ shards, one SIGKILLed every 2 s (and every 20 finished shards) and
restarted, one SIGSTOPped past its lease and continued. Every shard must end done exactly once, intact, with no
stray file and no image lost, and the stopped worker's late result must be rejected. TOL_CHAOS_SAMPLES_PER_SHARD
scales it. On SQLite the storm has no SIGSTOP: a worker stopped inside a write transaction would hold SQLite's
single write lock, and so every other worker, for as long as it is stopped."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.chaos.common import ChaosRow
from tests.helpers import TOL, assert_all_done_once, make_plan, tol_env

LEASE = 1.5
KILL_EVERY = 2.0
# Also kill whenever this many shards were finished since the last kill, so that fast writers still meet chaos.
KILL_EVERY_SHARDS = 20
# A takeover needs the lease (1.5 s) to run out and a worker to claim again; far longer means a held row lock.
TAKEOVER_WAIT = 15.0
SAMPLES_PER_SHARD = int(os.environ.get("TOL_CHAOS_SAMPLES_PER_SHARD", "2"))


def start_worker(plan: str, env: dict, log: Path) -> subprocess.Popen:
    # The run's report (with its lost leases) goes to stdout, progress to stderr: the log keeps both.
    return subprocess.Popen([TOL, "shards", "write", plan, "--workers", "1", "--lease", str(LEASE)], env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def claimed_by(engine, plan_id: int, pid: int) -> tuple | None:
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT id, claim_token FROM shards WHERE plan_id = :p AND state = 'claimed' AND worker LIKE :w"),
            {"p": plan_id, "w": f"%:{pid}"}).first()


def taken_over(engine, held: tuple, wait: float) -> bool:
    """Whether another worker took over the claim `held` (id, token) within `wait` seconds."""
    deadline = time.time() + wait
    while time.time() < deadline:
        with engine.connect() as connection:
            token = connection.execute(text("SELECT claim_token FROM shards WHERE id = :i"),
                                       {"i": held[0]}).scalar_one()
        if token != held[1]:
            return True
        time.sleep(0.05)
    return False


def remaining(engine, plan_id: int) -> int:
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT COUNT(*) FROM shards WHERE plan_id = :p AND state <> 'done'"), {"p": plan_id}).scalar_one()


@pytest.mark.slow
@pytest.mark.chaos
def test_kill_storm(chaos_catalog, tmp_path: Path, chaos_results):
    url, engine = chaos_catalog
    postgres = url.startswith("postgresql")
    started = time.monotonic()
    out = tmp_path / "out"
    plan = make_plan(engine, out, per_shard=SAMPLES_PER_SHARD)
    assert plan.n_shards >= 200
    env = tol_env(url, tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    rng = random.Random(7)
    procs = [start_worker(plan.name, env, logs / f"w{n}-0.log") for n in range(4)]
    stopped_index, stopped_log = 0, logs / "w0-0.log"
    generation = [0] * 4
    kills, stop_done = 0, not postgres
    deadline = time.time() + 300
    next_kill = time.time() + KILL_EVERY
    left_at_last_kill = left = remaining(engine, plan.id)
    while time.time() < deadline and left > 0:
        if not stop_done and procs[stopped_index].poll() is None:  # (PostgreSQL only)
            held = claimed_by(engine, plan.id, procs[stopped_index].pid)
            if held:
                procs[stopped_index].send_signal(signal.SIGSTOP)
                if claimed_by(engine, plan.id, procs[stopped_index].pid) == held:
                    # Stopped while holding a claim: wait until another worker has taken the shard over. If it
                    # was stopped inside its commit transaction, it holds the row lock and rightly keeps the shard
                    # (nobody can take it over), so let it go on and try again on a later claim.
                    stop_done = taken_over(engine, held, wait=TAKEOVER_WAIT)
                procs[stopped_index].send_signal(signal.SIGCONT)
        if time.time() >= next_kill or left_at_last_kill - left >= KILL_EVERY_SHARDS:
            victim = rng.choice([n for n in range(4) if n != stopped_index])
            if procs[victim].poll() is None:
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                kills += 1
            generation[victim] += 1
            procs[victim] = start_worker(plan.name, env, logs / f"w{victim}-{generation[victim]}.log")
            next_kill = time.time() + KILL_EVERY
            left_at_last_kill = left
        time.sleep(0.01)
        left = remaining(engine, plan.id)
    for proc in procs:
        proc.wait(timeout=120)
    with engine.connect() as connection:
        reasons = connection.execute(text("SELECT reason FROM image_errors")).scalars().all()
        failed = connection.execute(text("SELECT COUNT(*) FROM shards WHERE plan_id = :p AND state = 'failed'"),
                                    {"p": plan.id}).scalar_one()
    lost = sum(1 for reason in reasons if reason.startswith(("unreadable", "missing file", "timeout")))
    chaos_results.append(ChaosRow(f"kill storm ({kills} SIGKILLs{', SIGSTOP' if postgres else ''})",
                                  "postgresql" if postgres else "sqlite", plan.n_shards,
                                  remaining(engine, plan.id) == 0, failed, lost, "-", time.monotonic() - started))
    assert lost == 0
    assert remaining(engine, plan.id) == 0
    assert kills >= 2, "the plan finished before the chaos could start"
    assert stop_done, "never caught the stopped worker holding a claim"
    assert_all_done_once(engine, plan, out)
    if postgres:
        stopped_report = stopped_log.read_text()
        lost_leases = re.search(r"(\d+) lost leases?:", stopped_report)
        assert lost_leases and int(lost_leases.group(1)) >= 1, stopped_report  # its late result was rejected
    from etl import verify

    assert not any(r.problems for r in verify.verify(engine, url, plan.name, full=True, workers=2))

"""Cluster behaviour: MPI ranks, real Slurm jobs, signals, time limits, SQLite refusal, connection loss."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from etl import db, verify
from etl.errors import TolError
from etl.write import launch
from etl.write.worker import run_worker
from tests.helpers import IN_CI, TOL, assert_all_done_once, make_plan, shard_rows, tol_env, write_options

REPO = Path(__file__).resolve().parent.parent
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")


def test_mpiexec_ranks_share_the_plan(pg_catalog, tmp_path: Path):
    url, engine = pg_catalog
    out = tmp_path / "out"
    plan = make_plan(engine, out, per_shard=20)
    result = subprocess.run([MPIEXEC, "-n", "2", TOL, "shards", "write", plan.name], env=tol_env(url, tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{plan.name}: wrote {plan.n_shards} shards" in result.stdout  # rank 0's summary of all ranks
    assert result.stdout.count(f"{plan.name}: wrote") == 1  # once, not once per rank
    workers_used = {row[1].rsplit(":", 1)[-1] for row in shard_rows(engine, plan.id).values()}
    assert workers_used == {"0/2", "1/2"}
    assert_all_done_once(engine, plan, out)


def test_sigterm_releases_the_claim_and_exits_3(pg_catalog, tmp_path: Path):
    url, engine = pg_catalog
    out = tmp_path / "out"
    plan = make_plan(engine, out, per_shard=10_000)
    worker = subprocess.Popen([TOL, "shards", "write", plan.name, "--workers", "1", "--grace", "0"],
                              env=tol_env(url, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob(".shard-*.tmp")):
        time.sleep(0.02)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 3  # work left undone (the shard is pending again), so a chain stops
    with engine.connect() as connection:
        state, attempts, token = connection.execute(text(
            "SELECT state, attempts, claim_token FROM shards WHERE plan_id = :p"), {"p": plan.id}).one()
    assert (state, attempts, token) == ("pending", 0, None)  # released, not counted as a failed attempt
    assert list(out.glob("shard-*")) == [] and list(out.glob(".*")) == []


def test_no_claim_when_the_job_ends_before_a_shard_could(pg_catalog, tmp_path: Path, monkeypatch):
    url, engine = pg_catalog
    plan = make_plan(engine, tmp_path / "out", per_shard=50)
    monkeypatch.setenv("SLURM_JOB_END_TIME", str(int(time.time()) - 1))
    assert run_worker(write_options(url, plan.name, tmp_path / "cache")).claims == 0
    monkeypatch.setenv("SLURM_JOB_END_TIME", str(int(time.time()) + 3600))
    assert run_worker(write_options(url, plan.name, tmp_path / "cache")).shards == plan.n_shards


def test_sqlite_refused_on_network_filesystem_and_across_nodes(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    launch.check_sqlite_for_cluster(url, {"node1"})
    with pytest.raises(TolError, match=r"2 nodes .* use PostgreSQL"):
        launch.check_sqlite_for_cluster(url, {"node1", "node2"})
    monkeypatch.setattr(launch, "filesystem_type", lambda path: "lustre")
    with pytest.raises(TolError, match=r"network filesystem \(lustre\)"):
        launch.check_sqlite_for_cluster(url)
    launch.check_sqlite_for_cluster("postgresql+psycopg://u@h/db", {"a", "b"})  # PostgreSQL is fine


def test_worker_survives_terminated_connections(pg_catalog, tmp_path: Path):
    url, engine = pg_catalog
    out = tmp_path / "out"
    plan = make_plan(engine, out, per_shard=8)
    admin = create_engine(db.parse_url(url), isolation_level="AUTOCOMMIT")
    database = db.parse_url(url).database
    killed = []
    done = threading.Event()

    def terminate_sessions() -> None:
        while not done.is_set():
            with admin.connect() as connection:
                killed.extend(connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d "
                    "AND application_name = 'tol' AND pid <> pg_backend_pid()"), {"d": database}).all())
            time.sleep(0.3)

    killer = threading.Thread(target=terminate_sessions, daemon=True)
    killer.start()
    try:
        stats = run_worker(write_options(url, plan.name, tmp_path / "cache"))
    finally:
        done.set()
        killer.join()
        admin.dispose()
    assert killed, "no session was terminated during the run"
    assert stats.shards == plan.n_shards
    assert_all_done_once(engine, plan, out)
    assert not any(r.problems for r in verify.verify(engine, url, plan.name))


# ------------------------------------------------------------------------------------------------ Slurm


def slurm_available() -> bool:
    if shutil.which("sbatch") is None:
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return result.returncode == 0 and any(s in result.stdout for s in ("idle", "mix", "alloc"))


@pytest.fixture
def slurm():
    if not slurm_available():
        message = "no running Slurm cluster (scripts/slurm-up starts a one-node one)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def sbatch(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sbatch", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slurm
def test_sbatch_writes_a_plan_and_resumes_after_scancel(slurm, pg_catalog, tmp_path: Path):
    url, engine = pg_catalog
    env = tol_env(url, tmp_path, TOL=TOL)
    first = make_plan(engine, tmp_path / "first", name="slurm-first", per_shard=12)
    assert first.n_shards >= 40
    result = sbatch("--wait", "--ntasks", "2", str(REPO / "jobs" / "write-shards.sbatch"), first.name, env=env,
                    cwd=tmp_path)
    assert result.returncode == 0, (result.stdout, result.stderr, _job_outputs(tmp_path))
    assert_all_done_once(engine, first, tmp_path / "first")
    assert not any(r.problems for r in verify.verify(engine, url, first.name, full=True, workers=2))
    ranks = {row[1].rsplit(":", 1)[-1] for row in shard_rows(engine, first.id).values()}
    assert ranks == {"0/2", "1/2"}

    second = make_plan(engine, tmp_path / "second", name="slurm-second", split="train", per_shard=6)
    job = sbatch("--parsable", "--ntasks", "2", str(REPO / "jobs" / "write-shards.sbatch"), second.name,
                 env=env, cwd=tmp_path).stdout.strip().split(";")[0]
    deadline = time.time() + 300
    while time.time() < deadline:
        done = sum(1 for r in shard_rows(engine, second.id).values() if r[0] == "done")
        if done >= 5:
            break
        time.sleep(0.1)
    subprocess.run(["scancel", job], check=True)
    while subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip():
        time.sleep(0.5)
    before = {i: r for i, r in shard_rows(engine, second.id).items() if r[0] == "done"}
    assert 0 < len(before) < second.n_shards, "the job finished before it could be cancelled"
    result = sbatch("--wait", "--ntasks", "2", str(REPO / "jobs" / "write-shards.sbatch"), second.name, env=env,
                    cwd=tmp_path)
    assert result.returncode == 0, (result.stdout, result.stderr, _job_outputs(tmp_path))
    after = shard_rows(engine, second.id)
    assert {i: after[i] for i in before} == before  # the shards done before the cancel were not written again
    assert_all_done_once(engine, second, tmp_path / "second")


def _job_outputs(folder: Path) -> str:
    return "\n".join(p.read_text()[-2000:] for p in folder.glob("tol-write-*.out"))


@pytest.mark.slurm
def test_run_all_stops_its_chain_when_a_write_leaves_failed_shards(slurm, pg_catalog, sample_collection: Path,
                                                                   tmp_path: Path):
    """jobs/run-all as an operator submits it, its jobs held and released stage by stage: after prepare, the
    plans' folders are made unusable, so every write leaves failed shards and exits 3, and Slurm never starts
    the verify jobs chained to them with afterok."""
    url, _ = pg_catalog
    env = tol_env(url, tmp_path, TOL=TOL, TOL_CONFIG=str(sample_collection / "tol.toml"))
    submitted = subprocess.run([str(REPO / "jobs" / "run-all"), "chain", "1", "--cpus-per-task", "1", "--hold"],
                               env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert submitted.returncode == 0, submitted.stderr
    chains = {split: (write, verify_job) for split, write, verify_job in re.findall(
        r"^chain-(\w+): write job (\d+), verify job (\d+)$", submitted.stdout, re.MULTILINE)}
    head = re.search(r"ingest jobs ([\d ]+), prepare job (\d+)", submitted.stdout)
    assert head and set(chains) == {"train", "val", "train_small"}, submitted.stdout
    ingests, prepare = head.group(1).split(), head.group(2)
    every_job = [*ingests, prepare, *(job for pair in chains.values() for job in pair)]

    def gone(job: str) -> bool:
        return not subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip()

    def wait_for(jobs: list[str]) -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not all(gone(job) for job in jobs):
            time.sleep(0.5)

    try:
        subprocess.run(["scontrol", "release", ",".join([*ingests, prepare])], check=True)
        wait_for([*ingests, prepare])
        assert "ExitCode=0:0" in subprocess.run(["scontrol", "show", "job", "-o", prepare], capture_output=True,
                                                text=True).stdout
        for split in chains:
            folder = tmp_path / "out" / f"chain-{split}"
            assert folder.is_dir(), folder  # planned, probed and empty
            shutil.rmtree(folder)
            folder.write_text("not a folder\n")
        writes = [write for write, _ in chains.values()]
        subprocess.run(["scontrol", "release", ",".join(job for pair in chains.values() for job in pair)],
                       check=True)
        wait_for(writes)
        for write in writes:
            finished = subprocess.run(["scontrol", "show", "job", "-o", write], capture_output=True, text=True)
            assert "ExitCode=3:0" in finished.stdout, finished.stdout
        # The controller re-evaluates dependencies on its scheduling cycle: until then a verify job's reason
        # reads `Dependency`; it must turn to `DependencyNeverSatisfied`, the job still pending, never running.
        for _, verify_job in chains.values():
            reason, deadline = "", time.time() + 120
            while time.time() < deadline:
                state, _, reason = subprocess.run(["squeue", "-h", "-j", verify_job, "-o", "%T %r"],
                                                  capture_output=True, text=True).stdout.strip().partition(" ")
                assert state == "PENDING", (state, reason)
                if reason == "DependencyNeverSatisfied":
                    break
                time.sleep(1)
            assert reason == "DependencyNeverSatisfied", reason
        assert not list(tmp_path.glob("tol-verify-*.out"))
    finally:
        subprocess.run(["scancel", *every_job], capture_output=True)

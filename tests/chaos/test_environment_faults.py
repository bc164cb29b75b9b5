"""Chaos: faults of the environment during `tol shards write`, on SQLite and PostgreSQL, each with real `tol`
processes. After each run every shard is done exactly once and no image was lost to the environment:

* a source root moved away for a few seconds mid-write, then back: exit 0, nothing recorded against an image;
* a full output disk and a full cache (tmpfs): exit 4 with one line naming the disk, shards pending (none
  failed, no attempt counted, no temporary left); after the space is freed a plain rerun completes;
* a FIFO in place of an image: recorded as that image's error, the plan finishes.

TOL_CHAOS_FULL=1 (scripts/chaos) keeps the root away longer, on a larger plan."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.chaos.common import FULL, ChaosRow
from tests.helpers import TOL, assert_all_done_once, make_plan, roots, tol_env

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

PER_SHARD = 3 if FULL else 5
AWAY_SECONDS = 4.0 if FULL else 2.0
BUDGET = "3"  # seconds an environment fault is waited out before exit 4
PASSING = ("unreadable", "missing file", "timeout")  # image errors an environment fault could have caused


def database(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def write(plan: str, env: dict, *, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([TOL, "-q", "shards", "write", plan, "--workers", "2"], env=env, capture_output=True,
                          text=True, timeout=timeout)


def states(engine, plan_id: int) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(connection.execute(text(
            "SELECT state, COUNT(*) FROM shards WHERE plan_id = :p GROUP BY state"), {"p": plan_id}).all())


def attempts_of_pending(engine, plan_id: int) -> set[int]:
    with engine.connect() as connection:
        return set(connection.execute(text(
            "SELECT attempts FROM shards WHERE plan_id = :p AND state = 'pending'"), {"p": plan_id}).scalars())


def images_lost(engine) -> int:
    """Images recorded as failed for a cause that was not theirs to have (unreadable, missing, timed out)."""
    with engine.connect() as connection:
        reasons = connection.execute(text("SELECT reason FROM image_errors")).scalars().all()
    return sum(1 for reason in reasons if reason.startswith(PASSING))


def done_count(engine, plan_id: int) -> int:
    return states(engine, plan_id).get("done", 0)


def all_done(engine, plan) -> bool:
    return states(engine, plan.id) == {"done": plan.n_shards}


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.is_file() and not p.name.endswith(".lock"))


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_source_root_moved_away_during_a_write_loses_no_image(chaos_catalog, sample_collection: Path,
                                                              tmp_path: Path, worker_processes, chaos_results):
    url, engine = chaos_catalog
    out = tmp_path / "out"
    plan = make_plan(engine, out, per_shard=PER_SHARD)
    root = tmp_path / "inat21"
    shutil.copytree(roots(sample_collection)["inat21"], root)
    env = tol_env(url, tmp_path, TOL_INAT21_ROOT=str(root))
    started = time.monotonic()
    process = subprocess.Popen([TOL, "-q", "shards", "write", plan.name, "--workers", "2"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker_processes.append(process)
    deadline = time.monotonic() + 120
    while done_count(engine, plan.id) < 1 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    away = tmp_path / "inat21-away"
    root.rename(away)
    time.sleep(AWAY_SECONDS)
    left_while_away = plan.n_shards - done_count(engine, plan.id)
    away.rename(root)
    stdout, stderr = process.communicate(timeout=300)
    seconds = time.monotonic() - started
    lost = images_lost(engine)
    chaos_results.append(ChaosRow(f"source root away {AWAY_SECONDS:g} s", database(url), plan.n_shards,
                                  all_done(engine, plan),
                                  states(engine, plan.id).get("failed", 0), lost,
                                  str(process.returncode), seconds))
    assert process.returncode == 0, stderr
    assert left_while_away > 0, "the write finished before the root went away"
    assert "given back for a fault of the environment" in stdout
    assert lost == 0
    assert_all_done_once(engine, plan, out)


def test_full_output_disk_leaves_shards_pending_and_a_rerun_completes(chaos_catalog, tmp_path: Path, tmpfs,
                                                                      chaos_results):
    url, engine = chaos_catalog
    disk = tmpfs.mount(tmp_path / "outdisk", "600k")
    out = disk / "p-train"
    plan = make_plan(engine, out, per_shard=PER_SHARD)
    env = tol_env(url, tmp_path, TOL_ENVIRONMENT_BUDGET_SECONDS=BUDGET)
    started = time.monotonic()
    first = write(plan.name, env)
    assert first.returncode == 4, first.stderr
    line = one_line_error(first)
    assert line.startswith(f"Error: {out}: No space left on device"), line
    after_first = states(engine, plan.id)
    assert after_first.get("failed", 0) == 0 and after_first.get("pending", 0) > 0, after_first
    assert attempts_of_pending(engine, plan.id) == {0}
    assert hidden_files(disk) == []  # no temporary tar or .idx left on the full disk
    tmpfs.resize(disk, "64m")  # space freed
    second = write(plan.name, env)
    seconds = time.monotonic() - started
    lost = images_lost(engine)
    chaos_results.append(ChaosRow("output disk full", database(url), plan.n_shards, all_done(engine, plan),
                                  states(engine, plan.id).get("failed", 0), lost,
                                  f"{first.returncode}, then {second.returncode}", seconds))
    assert second.returncode == 0, second.stderr
    assert lost == 0
    assert_all_done_once(engine, plan, out)


def test_full_cache_leaves_shards_pending_and_a_rerun_completes(chaos_catalog, tmp_path: Path, tmpfs,
                                                                chaos_results):
    url, engine = chaos_catalog
    cache = tmpfs.mount(tmp_path / "cachedisk", "4m")  # one restaged EOL archive of the sample fits, not two
    out = tmp_path / "out"
    plan = make_plan(engine, out, per_shard=PER_SHARD)
    env = tol_env(url, tmp_path, TOL_CACHE_DIR=str(cache), TOL_ENVIRONMENT_BUDGET_SECONDS=BUDGET)
    started = time.monotonic()
    first = write(plan.name, env)
    assert first.returncode == 4, first.stderr
    line = one_line_error(first)
    assert line.startswith(f"Error: {cache}: cache: No space left on device"), line
    after_first = states(engine, plan.id)
    assert after_first.get("failed", 0) == 0 and after_first.get("pending", 0) > 0, after_first
    assert attempts_of_pending(engine, plan.id) == {0}
    assert hidden_files(cache) == [] and hidden_files(out) == []  # no partial restage, tar or .idx left
    tmpfs.resize(cache, "64m")
    second = write(plan.name, env)
    seconds = time.monotonic() - started
    lost = images_lost(engine)
    chaos_results.append(ChaosRow("cache disk full", database(url), plan.n_shards, all_done(engine, plan),
                                  states(engine, plan.id).get("failed", 0), lost,
                                  f"{first.returncode}, then {second.returncode}", seconds))
    assert second.returncode == 0, second.stderr
    assert lost == 0
    assert_all_done_once(engine, plan, out)


def test_fifo_in_place_of_an_image_does_not_stall_the_plan(chaos_catalog, sample_collection: Path,
                                                           tmp_path: Path, chaos_results):
    url, engine = chaos_catalog
    out = tmp_path / "out"
    plan = make_plan(engine, out, per_shard=PER_SHARD)
    root = tmp_path / "inat21"
    shutil.copytree(roots(sample_collection)["inat21"], root)
    with engine.connect() as connection:
        image_id, path = connection.execute(text(
            "SELECT i.id, i.path FROM shard_members AS m JOIN shards AS s ON s.id = m.shard_id "
            "JOIN images AS i ON i.id = m.image_id WHERE s.plan_id = :p AND i.source = 'inat21' "
            "ORDER BY s.shard_index, m.position LIMIT 1"), {"p": plan.id}).one()
    (root / path).unlink()
    os.mkfifo(root / path)  # whoever opens it for reading waits for a writer that never comes
    started = time.monotonic()
    result = write(plan.name, tol_env(url, tmp_path, TOL_INAT21_ROOT=str(root)), timeout=120)
    seconds = time.monotonic() - started
    with engine.connect() as connection:
        reason = connection.execute(text("SELECT reason FROM image_errors WHERE image_id = :i"),
                                    {"i": image_id}).scalar_one()
    lost = images_lost(engine)
    chaos_results.append(ChaosRow("FIFO in place of an image", database(url), plan.n_shards, all_done(engine, plan),
                                  states(engine, plan.id).get("failed", 0), lost,
                                  str(result.returncode), seconds))
    assert result.returncode == 0, result.stderr
    assert reason == "not a regular file (FIFO)"
    assert lost == 0
    assert_all_done_once(engine, plan, out)

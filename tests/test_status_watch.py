"""`tol status PLAN --watch / --once` on both databases, with a plan whose shards are in every state."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.helpers import TOL, make_plan, tol_env


def _finish(engine, plan_id: int, where: str) -> None:
    """Mark shards done as a worker would have, 100 samples each, finished a few seconds ago."""
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE shards SET state = 'done', n_samples = 100, done_at = :now, "
                                f"duration_s = 5, worker = 'w-done' WHERE plan_id = :p AND {where}"),
                           {"now": time.time() - 3, "p": plan_id})


def _status(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TOL, "status", "p-train", *args], env=tol_env(url, tmp_path), capture_output=True,
                          text=True, timeout=120)


def test_watch_shows_claims_stale_leases_failures_rate_and_ends(prepared_url, engine_of, tmp_path: Path):
    from etl.write.queue import ShardQueue

    engine = engine_of(prepared_url)
    plan = make_plan(engine, tmp_path / "out", per_shard=100)
    assert plan.n_shards >= 6
    queue = ShardQueue(engine)
    fresh = queue.claim(plan.id, "w-a", 300, 3)
    assert fresh is not None and fresh.shard_index == 0
    _finish(engine, plan.id, "shard_index = 1")
    failing = queue.claim(plan.id, "w-c", 300, 1)
    assert failing is not None and failing.shard_index == 2
    queue.fail_attempt(failing, "disk full", 1)
    stale = queue.claim(plan.id, "w-d", -100, 3)  # its lease ran out: a worker that stopped renewing
    assert stale is not None and stale.shard_index == 3

    frame = _status(prepared_url, tmp_path, "--once")
    assert frame.returncode == 0, frame.stderr
    out = frame.stdout
    assert f"1/{plan.n_shards} shards done, 2 claimed, {plan.n_shards - 4} pending, 1 failed" in out, out
    assert re.search(r"^  w-a: shard 0, claimed \d+ s ago$", out, re.MULTILINE), out
    assert re.search(r"^  w-d: shard 3, claimed \d+ s ago  STALE: lease expired 10\d s ago$", out, re.MULTILINE), out
    assert "failed shard 2 after 1 attempt: disk full" in out, out
    left = plan.n_samples - 100
    minutes = -(-left // (100 / 60) // 60)  # 100 samples in the last minute, rounded up to the minute
    assert f"last minute: 1.7 samples/s; ETA {int(minutes) // 60}:{int(minutes) % 60:02d}" in out, out

    # Unfinished: --watch keeps redrawing until Ctrl-C, which exits 130.
    watching = subprocess.Popen([TOL, "status", "p-train", "--watch", "--interval", "0.2"],
                                env=tol_env(prepared_url, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    assert watching.stdout is not None
    frames = 0
    while frames < 2:  # Python is running and drawing frames: Ctrl-C now reaches its handler
        line = watching.stdout.readline()
        assert line, watching.communicate(timeout=30)
        frames += line.startswith("p-train at ")
    watching.send_signal(signal.SIGINT)
    _, stderr = watching.communicate(timeout=30)
    assert watching.returncode == 130, stderr
    assert "Traceback" not in stderr

    # Finished but for the failed shard: --watch stops at once, exit 3; all done: exit 0.
    _finish(engine, plan.id, "state IN ('pending', 'claimed')")
    ended = _status(prepared_url, tmp_path, "--watch", "--interval", "0.2")
    assert ended.returncode == 3 and ended.stdout.count("p-train at ") == 1, ended.stdout + ended.stderr
    assert "tol shards retry p-train" in ended.stderr
    _finish(engine, plan.id, "state = 'failed'")
    done = _status(prepared_url, tmp_path, "--watch", "--interval", "0.2")
    assert done.returncode == 0, done.stderr
    assert f"{plan.n_shards}/{plan.n_shards} shards done" in done.stdout


@pytest.mark.parametrize("args", [["--watch"], ["--once"]])
def test_watch_needs_a_plan(args, tmp_path: Path):
    result = subprocess.run([TOL, "--database-url", f"sqlite:///{tmp_path}/none.sqlite", "status", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "need a PLAN" in result.stderr

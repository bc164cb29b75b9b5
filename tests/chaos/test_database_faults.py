"""Chaos, database side: a 20 s PostgreSQL outage in the middle of a write (ALLOW_CONNECTIONS off and every
session terminated) is waited out, with no traceback, no shard attempt counted and every shard done once;
two `taxa resolve` and two same-name `shards plan` at once both succeed; `tol db downgrade` under a running
write is refused in one line (exit 3) and the write completes. Real `tol` processes, both databases where the
fault exists on both. TOL_CHAOS_OUTAGE_SECONDS sets the outage (default 20)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.helpers import TOL, assert_all_done_once, make_plan, prepared_catalog, tol_env

OUTAGE_SECONDS = float(os.environ.get("TOL_CHAOS_OUTAGE_SECONDS", "20"))


def tol(*args: str, env: dict, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([TOL, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def counts(engine, plan_id: int) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT state, COUNT(*) FROM shards WHERE plan_id = :p GROUP BY state"),
                                       {"p": plan_id}).all())


def wait_for(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def set_connections(admin, name: str, allowed: bool) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
        if not allowed:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})


@pytest.fixture
def prepared(catalog_url, engine_of, sample_collection):
    engine = engine_of(catalog_url)
    prepared_catalog(engine, sample_collection)
    return catalog_url, engine


def test_a_postgres_outage_during_a_write_is_waited_out(pg_catalog, pg_admin, tmp_path: Path):
    url, engine = pg_catalog
    name = make_url(url).database
    out = tmp_path / "out"
    plan = make_plan(engine, out, per_shard=2)
    writer = tol("shards", "write", plan.name, "--workers", "2", env=tol_env(url, tmp_path), cwd=tmp_path)
    try:
        wait_for(lambda: counts(engine, plan.id).get("done", 0) >= 2)
        engine.dispose()
        set_connections(pg_admin, name, allowed=False)
        assert writer.poll() is None, "the write ended before the outage began"
        time.sleep(OUTAGE_SECONDS)
        assert writer.poll() is None, "the write did not wait for the database"
        set_connections(pg_admin, name, allowed=True)
        _, stderr = writer.communicate(timeout=600)
    finally:
        set_connections(pg_admin, name, allowed=True)
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert_all_done_once(engine, plan, out)
    with engine.connect() as connection:
        attempts = connection.execute(text("SELECT MAX(attempts) FROM shards WHERE plan_id = :p"),
                                      {"p": plan.id}).scalar_one()
        reasons = connection.execute(text("SELECT reason FROM image_errors")).scalars().all()
    assert attempts == 1
    # The sample collection's own broken images, and nothing the outage caused.
    assert not [reason for reason in reasons if "unreadable" in reason or "connection" in reason], reasons


def test_concurrent_resolves_and_same_name_plans_both_succeed(prepared, tmp_path: Path):
    url, engine = prepared
    env = tol_env(url, tmp_path)
    resolves = [tol("-q", "taxa", "resolve", env=env, cwd=tmp_path) for _ in range(2)]
    outputs = [process.communicate(timeout=600) for process in resolves]
    for process, (_, stderr) in zip(resolves, outputs, strict=True):
        assert process.returncode == 0 and "Traceback" not in stderr, stderr
    plan_args = ("-q", "shards", "plan", "twin", "--splits", "main", "--split", "train",
                 "--samples-per-shard", "7", "--out", str(tmp_path / "twin"))
    plans = [tol(*plan_args, env=env, cwd=tmp_path) for _ in range(2)]
    outputs = [process.communicate(timeout=600) for process in plans]
    for process, (_, stderr) in zip(plans, outputs, strict=True):
        assert process.returncode == 0 and "Traceback" not in stderr, stderr
    said = sorted(stdout.split(" ", 2)[1] for stdout, _ in outputs)
    assert said == ["already", "planned"]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM shard_plans WHERE name = 'twin'")).scalar() == 1


def test_downgrade_under_a_running_write_is_refused(prepared, tmp_path: Path):
    from etl import schema
    from etl.cli import cli

    url, engine = prepared
    out = tmp_path / "out"
    plan = make_plan(engine, out, per_shard=20)
    env = tol_env(url, tmp_path)
    writer = tol("shards", "write", plan.name, "--workers", "1", env=env, cwd=tmp_path)
    try:
        wait_for(lambda: counts(engine, plan.id).get("claimed", 0) >= 1)
        result = CliRunner().invoke(cli, ["db", "downgrade", "0008", "--yes"], env=env)
        _, stderr = writer.communicate(timeout=600)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert result.exit_code == 3, result.output
    assert "refusing to downgrade" in result.output and "Traceback" not in result.output
    assert schema.current_revision(engine) == schema.head_revision()
    assert writer.returncode == 0, stderr
    assert_all_done_once(engine, plan, out)

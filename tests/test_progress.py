"""Progress of the long stages on stderr: plain lines with count, rate and ETA when stderr is not a terminal
(as in a batch log), nothing with -q."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from etl import db, export
from tests.helpers import TOL, make_plan, tol_env

# count/total unit (percent), rate unit/s, elapsed, ETA
PLAIN_LINE = re.compile(r"^(?P<stage>\w+ \S+): (?P<done>\d+)/(?P<total>\d+) (?P<unit>\w+) \(\d+ %\), "
                        r"\s*[\d.?]+ ?\w+/s, elapsed [\d:]+, ETA [\d:?]+", re.MULTILINE)


@pytest.fixture
def small_plan(tmp_path: Path, prepared_sqlite_url: str) -> str:
    """A SQLite catalog of the sample collection with plan p-val (a few shards of 10) planned, not written."""
    url = prepared_sqlite_url
    engine = db.make_engine(url)
    make_plan(engine, tmp_path / "out" / "p-val", name="p-val", split="val", per_shard=10)
    engine.dispose()
    return url


def _tol(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # capture_output: stderr is a pipe, not a terminal, as in a batch job's log
    return subprocess.run([TOL, *args], env=tol_env(url, tmp_path, TOL_PROGRESS_SECONDS="0"),
                          capture_output=True, text=True, timeout=300)


def test_stages_print_plain_progress_lines_when_stderr_is_not_a_terminal(small_plan: str, tmp_path: Path):
    written = _tol(small_plan, tmp_path, "shards", "write", "p-val", "--workers", "2")
    assert written.returncode == 0, written.stderr
    lines = [m.groupdict() for m in PLAIN_LINE.finditer(written.stderr)]
    assert lines and all(line["stage"] == "write p-val" and line["unit"] == "shards" for line in lines), \
        written.stderr
    total = int(lines[-1]["total"])
    assert total > 1 and lines[-1]["done"] == str(total), written.stderr  # the last line shows the plan done
    assert "\r" not in written.stderr  # no bar redrawn in a log

    verified = _tol(small_plan, tmp_path, "shards", "verify", "p-val")
    assert verified.returncode == 0, verified.stderr
    checked = [m.groupdict() for m in PLAIN_LINE.finditer(verified.stderr)]
    assert [line["done"] for line in checked] == [str(n) for n in range(1, total + 1)], verified.stderr

    exported = _tol(small_plan, tmp_path, "catalog", "export", "p-val", "--out", str(tmp_path / "c.csv"))
    assert exported.returncode == 0, exported.stderr
    # Reading and joining first, a step each (lines before the first row), then the rows as they are written.
    lines = [(m["stage"], m["done"], m["unit"]) for m in PLAIN_LINE.finditer(exported.stderr)]
    steps = [("export p-val", str(n), "steps") for n in range(1, len(export.CATALOG_STEPS) + 1)]
    assert lines[:len(steps)] == steps and len(lines) == len(steps) + 1, exported.stderr
    assert lines[-1][0] == "export p-val" and lines[-1][2] == "rows", exported.stderr


def test_quiet_prints_no_progress(small_plan: str, tmp_path: Path):
    for args in (["shards", "write", "p-val"], ["shards", "verify", "p-val"],
                 ["catalog", "export", "p-val", "--out", str(tmp_path / "c.csv")]):
        result = _tol(small_plan, tmp_path, "-q", *args)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", result.stderr


def test_load_resolve_and_plan_print_progress_lines(sample_collection: Path, prepared_sqlite_url: str,
                                                    tmp_path: Path):
    url = prepared_sqlite_url
    config = ["--config", str(sample_collection / "tol.toml"), "--database-url", url]
    loaded = _tol(url, tmp_path, *config, "taxa", "load")
    assert loaded.returncode == 0, loaded.stderr
    load_lines = [m.groupdict() for m in PLAIN_LINE.finditer(loaded.stderr)]
    assert load_lines and {line["stage"] for line in load_lines} == {"taxa load"}, loaded.stderr
    assert load_lines[-1]["done"] == load_lines[-1]["total"] and load_lines[-1]["unit"] == "B", loaded.stderr
    resolved = _tol(url, tmp_path, *config, "taxa", "resolve")
    assert resolved.returncode == 0, resolved.stderr
    steps = [m.groupdict() for m in PLAIN_LINE.finditer(resolved.stderr)]
    assert [int(line["done"]) for line in steps] == list(range(1, int(steps[-1]["total"]) + 1)), resolved.stderr
    planned = _tol(url, tmp_path, *config, "shards", "plan", "p-train-2", "--splits", "main", "--split", "train",
                   "--samples-per-shard", "50", "--out", str(tmp_path / "out2"))
    assert planned.returncode == 0, planned.stderr
    plan_steps = [m.groupdict() for m in PLAIN_LINE.finditer(planned.stderr)]
    assert [line["stage"] for line in plan_steps] == ["plan p-train-2"] * 4, planned.stderr
    quiet = _tol(url, tmp_path, "-q", *config, "taxa", "resolve")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr

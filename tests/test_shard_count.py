"""Enough shards for every loader: `--min-shards` sizes default plans so ranks × workers all get shards, and
warns about a plan whose explicit size leaves fewer."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from etl.plan import DEFAULT_SAMPLES_PER_SHARD, few_shards_warning, get_plan, shard_size
from tests.helpers import TOL, tol_env

SAMPLE = 50_000  # bytes of one sample, as the planner estimates it


@pytest.mark.parametrize(("n_samples", "per_shard", "shard_bytes", "min_shards", "size"), [
    (1_000_000, None, None, 64, DEFAULT_SAMPLES_PER_SHARD),  # the default already gives 100 shards
    (640_000, None, None, 64, DEFAULT_SAMPLES_PER_SHARD),  # exactly 64 full shards
    (639_999, None, None, 64, 9_999),  # one sample short: cut to reach 64
    (50_000, None, None, 64, 781),  # val of a 1M-image set: 65 shards, not 5
    (64, None, None, 64, 1),
    (127, None, None, 64, 1),  # 127 one-sample shards: the largest size with at least 64
    (63, None, None, 64, DEFAULT_SAMPLES_PER_SHARD),  # too few samples to reach 64: default, no warning
    (0, None, None, 64, DEFAULT_SAMPLES_PER_SHARD),
    (50_000, None, None, 1, DEFAULT_SAMPLES_PER_SHARD),
    (50_000, 200, None, 64, 200),  # a size the user gave is kept, even with 250 shards ...
    (50_000, 20_000, None, 64, 20_000),  # ... or with 3 (the caller warns)
    (50_000, None, 3_000_000_000, 64, 60_000),  # a byte target is kept too
    (50_000, None, 10, 64, 1),
])
def test_shard_size(n_samples, per_shard, shard_bytes, min_shards, size):
    got = shard_size(n_samples, samples_per_shard=per_shard, shard_bytes=shard_bytes, sample_bytes=SAMPLE,
                     min_shards=min_shards)
    assert got == size
    if per_shard is None and shard_bytes is None and n_samples >= min_shards:
        assert min_shards <= math.ceil(n_samples / got) < 2 * min_shards or got == DEFAULT_SAMPLES_PER_SHARD


@pytest.mark.parametrize(("n_samples", "n_shards", "min_shards", "warned"), [
    (50_000, 3, 64, True), (50_000, 64, 64, False), (63, 1, 64, False), (64, 1, 64, True), (10, 1, 1, False),
])
def test_few_shards_warning(n_samples, n_shards, min_shards, warned):
    warning = few_shards_warning("p", n_samples, n_shards, min_shards)
    assert (warning is not None) == warned
    if warning:
        assert f"{n_shards} shards" in warning and f"--min-shards {min_shards}" in warning


def plan(tmp_path: Path, url: str, name: str, *options: str) -> subprocess.CompletedProcess:
    """`tol shards plan NAME` of the split main's train images, as a process."""
    return subprocess.run([TOL, "shards", "plan", name, "--splits", "main", "--split", "train", *options],
                          env=tol_env(url, tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_min_shards_through_the_cli(prepared_url, engine_of, tmp_path: Path):
    engine = engine_of(prepared_url)

    fitted = plan(tmp_path, prepared_url, "fitted", "--min-shards", "8")
    assert fitted.returncode == 0 and fitted.stderr == "", fitted.stderr
    explicit = plan(tmp_path, prepared_url, "explicit", "--min-shards", "8", "--samples-per-shard", "100000")
    assert explicit.returncode == 0
    assert explicit.stderr.count("\n") == 1 and "warning: plan explicit has 1 shards, fewer than --min-shards 8" \
        in explicit.stderr
    again = plan(tmp_path, prepared_url, "explicit", "--min-shards", "8", "--samples-per-shard", "100000")
    assert "unchanged" in again.stdout and "warning" in again.stderr  # an existing plan is still warned about
    refused = plan(tmp_path, prepared_url, "refused", "--min-shards", "0")
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        "Error: --min-shards must be at least 1, not 0"]

    fitted_plan, explicit_plan = get_plan(engine, "fitted"), get_plan(engine, "explicit")
    n = fitted_plan.n_samples
    assert n == explicit_plan.n_samples and n >= 8 and explicit_plan.n_shards == 1
    with engine.connect() as connection:
        counts = [c for _, c in connection.execute(text(
            "SELECT s.shard_index, COUNT(*) FROM shard_members AS m JOIN shards AS s ON s.id = m.shard_id "
            "WHERE s.plan_id = :p GROUP BY s.shard_index ORDER BY 1"), {"p": fitted_plan.id})]
    # The same cut on either database: shards of n // 8 samples, the last holding the rest.
    per = n // 8
    assert fitted_plan.n_shards == len(counts) == math.ceil(n / per) >= 8
    assert counts[:-1] == [per] * (len(counts) - 1) and sum(counts) == n

"""The chaos suite's fixtures: a prepared catalog on each database, tmpfs mounts for full disks, and the table
of results printed at the end of the run (`scripts/chaos` runs the full suite; CI runs the short one as part
of the README's test command).

TOL_CHAOS_FULL=1 makes every fault last longer and hit a larger plan."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.common import FULL, ChaosRow
from tests.helpers import IN_CI, prepared_catalog

RESULTS: list[ChaosRow] = []


@pytest.fixture
def chaos_results() -> list[ChaosRow]:
    """Where each chaos test adds its row."""
    return RESULTS


def pytest_terminal_summary(terminalreporter) -> None:
    """The table of every chaos run, like the issue's: fault, database, shards, outcome, exit codes, time."""
    if not RESULTS:
        return
    header = ("fault", "database", "shards", "done exactly once", "failed", "images lost", "exit codes", "seconds")
    rows = [(r.fault, r.database, str(r.shards), "yes" if r.done_once else "NO", str(r.failed),
             str(r.images_lost), r.exits, f"{r.seconds:.1f}") for r in RESULTS]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    terminalreporter.write_sep("=", f"chaos ({'full' if FULL else 'short'})")
    for row in (header, tuple("-" * w for w in widths), *rows):
        terminalreporter.write_line(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


@pytest.fixture
def chaos_catalog(catalog_url, engine_of, sample_collection: Path):
    """A catalog of the sample collection, ingested, named and split, on SQLite and on PostgreSQL."""
    engine = engine_of(catalog_url)
    prepared_catalog(engine, sample_collection)
    return catalog_url, engine


@pytest.fixture
def tmpfs():
    """Mount a small tmpfs: `mount(folder, size)`; `resize(folder, size)` grows it. Unmounted after the test."""
    mounted: list[Path] = []

    class Mounts:
        def mount(self, folder: Path, size: str) -> Path:
            folder.mkdir(parents=True, exist_ok=True)
            result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                message = f"cannot mount a tmpfs (root needed): {result.stderr.strip()}"
                if IN_CI:
                    pytest.fail(message)
                pytest.skip(message)
            mounted.append(folder)
            return folder

        def resize(self, folder: Path, size: str) -> None:
            subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)

    yield Mounts()
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def worker_processes() -> Iterator[list[subprocess.Popen]]:
    """Processes a test started; any still running at the end is killed (by its own id)."""
    processes: list[subprocess.Popen] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()

"""Test-suite benchmark (see bench/suite).

Each of the two commits is checked out in a worktree of its own (``git worktree add --detach``) and gets its
own virtual environment through its own ``scripts/bootstrap``, so each runs its own tests with its own
code and pytest settings. The rounds are interleaved (old, new; then new, old; …) so that a machine whose load
changes during the measurement burdens both alike. Wall time is what a developer waits; CPU time is user +
system seconds of pytest and every process it started and waited for (``RUSAGE_CHILDREN`` of this process,
which runs one suite at a time), the figure that stays comparable on a machine shared with other work.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import machine  # noqa: E402

OUTCOME = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


class Run(NamedTuple):
    """One pytest run of one commit."""

    label: str
    round: int
    wall: float
    cpu: float
    exit_code: int
    outcome: str
    load: str


def git(*args: str, cwd: Path = ROOT) -> str:
    """The stripped output of a git command run in `cwd`."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def checkout(rev: str, workdir: Path) -> Path:
    """A worktree of `rev` under `workdir` with its own bootstrapped venv (reused if already there)."""
    sha = git("rev-parse", f"{rev}^{{commit}}")
    tree = workdir / sha[:12]
    if not (tree / ".git").exists():
        git("worktree", "add", "--detach", "--force", str(tree), sha)
    elif git("rev-parse", "HEAD", cwd=tree) != sha:
        raise SystemExit(f"{tree} exists but is not at {sha[:12]}; remove it or choose another --workdir")
    print(f"bootstrapping {rev} ({sha[:12]}) in {tree} …", flush=True)
    subprocess.run(["scripts/bootstrap"], cwd=tree, check=True, stdout=subprocess.DEVNULL)
    return tree


def pytest_addopts(tree: Path) -> str:
    """The pytest options `tree`'s pyproject.toml adds to every run (e.g. its parallel workers), or '' if none."""
    try:
        settings = tomllib.loads((tree / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return ""
    addopts = settings.get("tool", {}).get("pytest", {}).get("ini_options", {}).get("addopts", "")
    return addopts if isinstance(addopts, str) else " ".join(addopts)


def load_average() -> str:
    """The 1-minute load average, or '?' where /proc is missing."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def collected(tree: Path, pytest_args: list[str]) -> set[str]:
    """The test ids pytest collects in `tree` for `pytest_args` (the whole suite when empty)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    out = subprocess.run([str(tree / ".venv" / "bin" / "python"), "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", *pytest_args], cwd=tree, env=env, capture_output=True, text=True)
    return {line.strip() for line in out.stdout.splitlines() if "::" in line and not line.startswith(" ")}


def run_suite(label: str, round_no: int, tree: Path, pytest_args: list[str], log: Path) -> Run:
    """Run pytest once in `tree`; its output goes to `log`."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    command = [str(tree / ".venv" / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
               *pytest_args]
    load = load_average()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w") as out:
        # A suite started in the background inherits an ignored SIGINT, and tests that interrupt `tol` need it.
        exit_code = subprocess.run(command, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = log.read_text(errors="replace").splitlines()
    summary = next((line for line in reversed(lines) if OUTCOME.search(line)), "")
    outcome = ", ".join(f"{n} {what}" for n, what in OUTCOME.findall(summary)) or f"no summary (see {log})"
    return Run(label, round_no, wall, cpu, exit_code, outcome, f"{load}→{load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="Arguments after -- go to pytest "
                                     "(default: the whole suite), e.g. bench/suite -- tests/test_splits.py")
    parser.add_argument("--old", default="9d78383", help="the baseline commit (default: 9d78383)")
    parser.add_argument("--new", default="HEAD", help="the commit measured against it (default: HEAD)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each commit, interleaved (default: 1)")
    parser.add_argument("--workdir", type=Path, help="keep the worktrees and logs here and reuse them "
                        "(default: a temporary directory, removed afterwards)")
    parser.add_argument("--common", action="store_true", help="run only the tests both commits have (the same "
                        "test ids), so that a suite grown since the old commit is compared test for test")
    parser.add_argument("pytest_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds: must be at least 1")

    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tol-suite-", dir=os.environ.get("TOL_BENCH_DIR")))
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    trees: dict[str, Path] = {}
    try:
        trees = {"old": checkout(args.old, workdir), "new": checkout(args.new, workdir)}
        selection = " ".join(args.pytest_args) or "the whole suite"
        if args.common:
            old_ids, new_ids = (collected(trees[label], args.pytest_args) for label in ("old", "new"))
            common = sorted(old_ids & new_ids)
            if not common:
                raise SystemExit("--common: the two commits have no test id in common")
            selection = (f"the {len(common):,} tests both commits have ({selection}; old has {len(old_ids):,}, "
                         f"new {len(new_ids):,})")
            args.pytest_args = [arg for arg in args.pytest_args if arg.startswith("-")] + common
        print(f"\ntest-suite benchmark: {selection}; old = {args.old} ({git('rev-parse', '--short', args.old)}), "
              f"new = {args.new} ({git('rev-parse', '--short', args.new)}), {args.rounds} interleaved round(s)")
        print(f"machine: {machine()}")
        for label in ("old", "new"):  # each commit runs with its own pytest settings
            print(f"{label} pytest addopts: {pytest_addopts(trees[label]) or '(none)'}")
        print()
        print(f"  {'run':<10} {'wall s':>8} {'CPU s':>8}  {'load':<11} outcome")
        runs: list[Run] = []
        for round_no in range(1, args.rounds + 1):
            order = ("old", "new") if round_no % 2 else ("new", "old")
            for label in order:
                run = run_suite(label, round_no, trees[label], args.pytest_args,
                                workdir / f"{label}-round{round_no}.log")
                runs.append(run)
                flag = "" if run.exit_code == 0 else f"  (exit {run.exit_code})"
                print(f"  {label + ' #' + str(round_no):<10} {run.wall:8.1f} {run.cpu:8.1f}  {run.load:<11} "
                      f"{run.outcome}{flag}", flush=True)
        print()
        medians = {}
        for label in ("old", "new"):
            mine = [r for r in runs if r.label == label]
            medians[label] = (statistics.median(r.wall for r in mine), statistics.median(r.cpu for r in mine))
            print(f"  {label:<4} median: wall {medians[label][0]:7.1f} s, CPU {medians[label][1]:7.1f} s")
        (old_wall, old_cpu), (new_wall, new_cpu) = medians["old"], medians["new"]
        print(f"  new vs old: wall {new_wall - old_wall:+.1f} s ({new_wall / old_wall:.2f}×), "
              f"CPU {new_cpu - old_cpu:+.1f} s ({new_cpu / old_cpu:.2f}×)")
        if any(r.exit_code != 0 for r in runs):
            print(f"  some runs did not pass: logs in {workdir}" + ("" if keep else " (kept)"))
            keep = True
    finally:
        if not keep:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                               capture_output=True)
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Every `Example:` line of every command's help, run as a shell command against a sample catalog.

The working folder of each help block links the folders of the generated sample collection (so the relative
paths of the examples, `rarespecies/…`, `itis/…`, exist), holds its tol.toml (also as cluster.toml, the name
the examples use for a site config) and a copy of a catalog that is ingested, named, split (`main`) and holds
the written plans `main-train` and `main-val`, made by the examples of `tol shards plan` themselves. The lines
of one block run in order in the same folder (`tol splits create v1` comes before `tol splits show v1`).
Paths that only exist on a site (`/data/…`) are mapped onto the sample collection, and a site's worker count onto
this machine's; a line that cannot run here says why in NOT_RUNNABLE, and a stale entry there fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from etl.cli import cli

BIN = str(Path(sys.executable).parent)

# Lines that cannot run in a test, and why.
NOT_RUNNABLE = {
    "srun --mpi=pmi2 -n 64 tol shards write main-train": "needs a Slurm cluster with MPI (tests/test_cluster.py)",
}

# Site paths in examples -> the same thing in the working folder (which links the sample collection).
PLACEHOLDERS = {
    "/data/inat21/train": "inat21/train",
    "/data/eol/media_cargo_archive": "eol/media_cargo_archive",
    "/data/bioscan/cropped_256": "bioscan/cropped_256",
    "/data/bioscan/metadata.jsonld": "bioscan/BIOSCAN_Insect_Dataset_metadata.jsonld",
    # The catalog-free check reads any downloaded shards: here, those of the written plan main-train.
    "downloads/shard-{000003..000031}.tar": "shards/main-train/shard-{000000..000000}.tar",
    # A published release's folder: the release fixture of a sample collection (`tol sample-data --release`),
    # made by the line before; its plans are those `tol reproduce` makes.
    "TreeOfLife-10M/metadata/": "rel/release/metadata/",
    "compare release-train": "compare main-val",
    # A site's node has the cores for 16 workers; this machine's two would time-slice 16 processes' start-up.
    "run --workers 16": "run --workers 2",
}
PG_EXAMPLE_URL = "postgresql+psycopg://postgres@127.0.0.1/tol"

# Blocks that make their own catalog and shards: they start in a folder with neither.
FRESH = {"run", "demo", "tol", "reproduce", "import-release"}
SLOW = {"run", "demo", "tol", "reproduce"}
# Blocks whose examples name a published release: the fixture is made first.
RELEASE_FIXTURE = {"import-release": "tol sample-data rel --images 200 --release && tol db upgrade",
                   "catalog compare": (
    "tol sample-data rel --images 200 --release && tol catalog export main-val --out rel/release/metadata/catalog.csv")}


def _walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*path, name))


def example_lines(command: click.Command) -> list[str]:
    """The command lines under `Example:` in the help of `command`."""
    help_text = command.help or ""
    if "Example:" not in help_text:
        return []
    block = help_text.split("Example:", 1)[1]
    return [line.strip() for line in block.splitlines() if line.strip() and line.strip() != "\b"]


BLOCKS = {" ".join(path) or "tol": example_lines(command) for path, command in _walk(cli)}


def test_every_command_has_examples_and_exemptions_are_current():
    assert all(BLOCKS.values()), [name for name, lines in BLOCKS.items() if not lines]
    every_line = {line for lines in BLOCKS.values() for line in lines}
    assert set(NOT_RUNNABLE) <= every_line, set(NOT_RUNNABLE) - every_line
    assert all(any(key in line for line in every_line) for key in PLACEHOLDERS)


def _link_collection(collection: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for entry in collection.iterdir():
        if entry.name == "tol.toml":
            shutil.copy(entry, folder / "tol.toml")
            shutil.copy(entry, folder / "cluster.toml")
        elif entry.is_dir():
            (folder / entry.name).symlink_to(entry)


def _env(folder: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOL_")}
    return {**env, "PATH": f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}", "TOL_CONFIG": str(folder / "tol.toml")}


def _shell(line: str, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", line], cwd=folder, env=_env(folder), capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def prepared_folder(sample_collection: Path, sqlite_prepared_template: Path, tmp_path_factory) -> Path:
    """A folder with a prepared catalog and the plans main-train and main-val planned (by the examples of
    `tol shards plan`) and written."""
    folder = tmp_path_factory.mktemp("examples") / "base"
    _link_collection(sample_collection, folder)
    shutil.copyfile(sqlite_prepared_template, folder / "catalog.sqlite")
    plan_lines = [line for line in BLOCKS["shards plan"] + BLOCKS["shards"] if line.startswith("tol shards plan")]
    for line in [*plan_lines, "tol -q shards write main-train --workers 2", "tol -q shards write main-val"]:
        result = _shell(line, folder)
        assert result.returncode == 0, f"{line}: {result.stderr}"
    return folder


def _block_folder(name: str, base: Path, sample_collection: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    _link_collection(sample_collection, folder)
    if name not in FRESH:
        shutil.copy(base / "catalog.sqlite", folder / "catalog.sqlite")
        (folder / "shards").symlink_to(base / "shards")
    return folder


@pytest.mark.parametrize("name", [pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [])
                                  for name in BLOCKS])
def test_help_example_runs(name: str, prepared_folder: Path, sample_collection: Path, tmp_path: Path, request):
    folder = _block_folder(name, prepared_folder, sample_collection, tmp_path)
    if name in RELEASE_FIXTURE:
        assert _shell(RELEASE_FIXTURE[name], folder).returncode == 0
    for line in BLOCKS[name]:
        if line in NOT_RUNNABLE:
            continue
        command = line
        for placeholder, real in PLACEHOLDERS.items():
            command = command.replace(placeholder, real)
        if PG_EXAMPLE_URL in command:
            command = command.replace(PG_EXAMPLE_URL, request.getfixturevalue("empty_pg_url"))
        result = _shell(command, folder)
        assert result.returncode == 0, f"{line!r} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr

"""CLI surface: help with examples everywhere, one-line errors, refusal of catalogs not at head."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from etl import db, schema
from etl.cli import cli


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*prefix, name))


COMMANDS = [path for path, _ in _all_commands(cli)]


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "tol")
def test_help_has_example(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def tol(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `tol` entry point in a subprocess."""
    return subprocess.run([sys.executable, "-c", "from etl.cli import main; main()", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "message"), [
    (["--database-url", "nonsense://"], "unsupported database"),
    (["--database-url", "::::"], "malformed database URL"),
    (["--database-url", "sqlite:////no/such/dir/c.sqlite"], "directory for the SQLite catalog does not exist"),
    (["--database-url", "postgresql+psycopg://postgres@127.0.0.1:1/none"], "cannot open the catalog"),
    (["--config", "absent.toml"], "config file not found"),
])
def test_user_errors_are_one_line(tmp_path: Path, args, message):
    result = tol(*args, "db", "current", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_read_only_sqlite_directory_message(tmp_path: Path, monkeypatch):
    # CI runs as root, which ignores folder permissions, so the check is driven through os.access.
    monkeypatch.setattr(db.os, "access", lambda path, mode: False)
    with pytest.raises(Exception, match=r"read-only|not readable"):
        db.make_engine(f"sqlite:///{tmp_path}/c.sqlite")


def test_config_show_precedence(tmp_path: Path):
    (tmp_path / "tol.toml").write_text('workers = 3\noutput_dir = "out"\ncache_dir = "c"\n'
                                       'database_url = "postgresql+psycopg://me:hunter2@db:5432/tol"\n')
    env = {"TOL_OUTPUT_DIR": "env-out", "PATH": "/usr/bin:/bin"}
    result = tol("--config", "tol.toml", "config", "show", "--help", cwd=tmp_path, env=env)
    assert result.returncode == 0
    result = tol("--config", "tol.toml", "config", "show", cwd=tmp_path, env=env)
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line and ":" not in line[:12]}
    assert "hunter2" not in result.stdout and "me:***@db" in result.stdout
    assert "env-out" in lines["output_dir"] and "(env TOL_OUTPUT_DIR)" in lines["output_dir"]
    assert lines["workers"].split()[1] == "3" and "(file " in lines["workers"]
    assert f"{tmp_path}/c" in lines["cache_dir"]
    assert "(default)" in lines["inat21_root"]
    flagged = tol("--config", "tol.toml", "--database-url", "sqlite:///x.sqlite", "config", "show",
                  cwd=tmp_path, env=env)
    assert "sqlite:///x.sqlite  (flag)" in flagged.stdout


@pytest.mark.parametrize("catalog_url", ["sqlite", "postgresql"], indirect=True)
def test_refuses_catalog_behind_or_ahead(catalog_url, engine_of, tmp_path: Path):
    engine = engine_of(catalog_url)
    schema.require_head(engine)
    schema.downgrade(engine, "base")
    with pytest.raises(Exception, match=r"has no schema yet: run `tol --database-url \S+ db upgrade`"):
        schema.require_head(engine)
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff9999'")
    with pytest.raises(Exception, match="unknown to this version of tol"):
        schema.require_head(engine)


def test_stage_command_refuses_catalog_behind_head(tmp_path: Path):
    from etl import db as db_mod

    engine = db_mod.make_engine(f"sqlite:///{tmp_path}/c.sqlite")
    schema.upgrade(engine, "0001")
    engine.dispose()
    (tmp_path / "root").mkdir()
    result = tol("--database-url", "sqlite:///c.sqlite", "ingest", "inat21", "root", cwd=tmp_path)
    assert result.returncode == 2
    where = f"sqlite:///{tmp_path.resolve() / 'c.sqlite'}"
    assert result.stderr.strip() == f"Error: the catalog {where} is at revision 0001, behind " \
        f"{schema.head_revision()}: run `tol --database-url {where} db upgrade`"


def test_demo_runs_the_whole_pipeline_and_reruns_as_a_no_op(demo_300: Path, tmp_path: Path):
    import csv

    import webdataset

    env = {k: v for k, v in os.environ.items() if not k.startswith("TOL_")}
    for split in ("train", "val", "train_small"):
        folder = demo_300 / "shards" / f"main-{split}"
        keys = [s["__key__"] for tar in sorted(folder.glob("shard-*.tar"))
                for s in webdataset.WebDataset(str(tar), shardshuffle=False, empty_check=False)]
        with open(demo_300 / "shards" / f"catalog-main-{split}.csv", encoding="utf-8") as handle:
            rows = [row["treeoflife_id"] for row in csv.DictReader(handle)]
        assert keys == rows and len(keys) > 0
    again = tol("demo", str(demo_300), cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "already done" in again.stdout and "wrote 0 shards" in again.stdout

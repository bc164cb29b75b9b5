"""The operator's contract: exit codes, one-line errors for every command, no silent catalog creation, output
folders owned by one plan, failed shards that make `tol shards write` exit 3, guarded downgrades."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from etl import schema
from etl.errors import ExitCode, TolError
from etl.plan import plan_names
from etl.write import launch
from etl.write.worker import run_worker
from tests.helpers import TOL, make_plan, tol_env, write_options


def tol(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """Run the installed `tol` script."""
    return subprocess.run([TOL, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, fragment: str) -> None:
    """Exit status `code`, and stderr exactly one line, `Error: …` containing `fragment`, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr


def test_exit_codes_are_fixed():
    assert [int(code) for code in ExitCode] == [0, 2, 3, 4, 70, 130]


# Every command with bad arguments: (arguments, exit code, what the one line must say).
BAD_ARGUMENTS = [
    (["shards", "write", "no-such-plan", "--workers", "3"], 2, "no shard plan 'no-such-plan'"),
    (["shards", "verify", "no-such-plan"], 2, "no shard plan 'no-such-plan'"),
    (["shards", "retry", "no-such-plan"], 2, "no shard plan 'no-such-plan'"),
    (["shards", "plan", "p", "--splits", "nosplit", "--split", "val"], 2, "no split definition 'nosplit'"),
    (["shards", "plan", "p", "--splits", "s", "--split", "val", "--size", "0x0"], 2, "--size"),
    (["shards", "plan", "p", "--splits", "s", "--split", "nope"], 2, "'--split'"),
    (["shards", "write"], 2, "Missing argument 'PLAN'"),
    (["status", "no-such-plan"], 2, "no shard plan 'no-such-plan'"),
    (["catalog", "export", "no-such-plan", "--out", "x.csv"], 2, "no shard plan 'no-such-plan'"),
    (["catalog", "export", "p", "--format", "csv", "--out", "x.parquet"], 2, "does not match --out"),
    (["splits", "show", "nosplit"], 2, "no split definition 'nosplit'"),
    (["splits", "create", "s", "--val-percent", "nan"], 2, "--val-percent"),
    (["splits", "create", "s", "--val-percent", "-1"], 2, "--val-percent"),
    (["splits", "create", "s", "--train-small-percent", "101"], 2, "--train-small-percent"),
    (["db", "upgrade", "9999"], 2, "unknown revision '9999'"),
    (["db", "downgrade", "nonsense"], 2, "unknown revision 'nonsense'"),
    (["taxa", "load", "--eol-taxon-tab", "MISSING.tab"], 2, "MISSING.tab"),
    (["exclude", "rare-species", "--seen", "MISSING.json", "--unseen", "MISSING.json"], 2, "MISSING.json"),
    (["ingest", "inat21", "no-such-root"], 2, "no-such-root"),
    (["run", "--val-percent", "150"], 2, "--val-percent"),
    (["run", "--val-percent", "0"], 2, "--val-percent"),
    (["run", "--train-small-percent", "100"], 2, "--train-small-percent"),
    (["run", "--val-percent", "nan"], 2, "--val-percent"),
    (["run", "--split-name", "bad name!"], 2, "--split-name"),
]


@pytest.mark.parametrize(("args", "code", "fragment"), BAD_ARGUMENTS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_every_command_with_bad_arguments_says_one_line(catalog_url, tmp_path: Path, args, code, fragment):
    result = tol(*args, env=tol_env(catalog_url, tmp_path), cwd=tmp_path)
    assert_one_line_error(result, code, fragment)


@pytest.mark.parametrize(("url", "fragment"), [
    ("postgresql+psycopg://postgres@127.0.0.1:abc/db", "malformed database URL"),
    ("postgresql+psycopg://postgres@127.0.0.1:1/none", "cannot open the catalog"),
    ("mysql://x@y/z", "unsupported database"),
])
def test_malformed_or_unreachable_url_is_one_line(tmp_path: Path, url, fragment):
    result = tol("status", env=tol_env(url, tmp_path), cwd=tmp_path)
    assert_one_line_error(result, 2, fragment)


@pytest.mark.parametrize("args", [["status"], ["db", "current"], ["splits", "list"], ["shards", "write", "p"],
                                  ["db", "downgrade", "base"], ["taxa", "resolve"]])
def test_missing_sqlite_catalog_is_refused_and_named(tmp_path: Path, args):
    missing = tmp_path / "elsewhere" / "missing.sqlite"
    missing.parent.mkdir()
    result = tol(*args, env=tol_env(f"sqlite:///{missing}", tmp_path), cwd=tmp_path)
    assert_one_line_error(result, 2, f"no catalog at {missing}")
    assert f"sqlite:///{missing} db upgrade" in result.stderr
    assert not missing.exists()


def test_db_upgrade_creates_the_catalog_it_is_given(tmp_path: Path):
    target = tmp_path / "new.sqlite"
    result = tol("db", "upgrade", env=tol_env(f"sqlite:///{target}", tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert target.exists() and not (tmp_path / "catalog.sqlite").exists()


def test_run_checks_options_before_creating_anything(tmp_path: Path):
    target = tmp_path / "run.sqlite"
    result = tol("run", "--samples-per-shard", "0", env=tol_env(f"sqlite:///{target}", tmp_path), cwd=tmp_path)
    assert_one_line_error(result, 2, "--samples-per-shard")
    assert not target.exists()


def test_db_current_on_a_newer_catalog_does_not_advise_an_upgrade(catalog_url, engine_of, tmp_path: Path):
    with engine_of(catalog_url).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff9999'"))
    env = tol_env(catalog_url, tmp_path)
    current = tol("db", "current", env=env, cwd=tmp_path)
    assert current.returncode == 0 and "newer tol" in current.stdout and "tol db upgrade" not in current.stdout
    assert_one_line_error(tol("db", "upgrade", env=env, cwd=tmp_path), 2, "unknown to this version of tol")


def test_internal_error_keeps_its_traceback_and_says_it_is_a_bug(monkeypatch, capsys):
    from etl import cli

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli.cli, "main", broken)
    with pytest.raises(SystemExit) as exited:
        cli.main(["status"])
    assert exited.value.code == ExitCode.BUG
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err and "internal error (a bug in tol" in err


# ------------------------------------------------------------------------- a catalog with images and splits


@pytest.fixture
def prepared(prepared_url, engine_of):
    """A catalog at head (SQLite and PostgreSQL) with the sample collection ingested, named and split `main`."""
    return prepared_url, engine_of(prepared_url)


def test_plans_may_not_share_an_output_folder(prepared, tmp_path: Path):
    _url, engine = prepared
    out = tmp_path / "shared"
    make_plan(engine, out, name="p-train", split="train")
    with pytest.raises(TolError, match=r"output folder .*shared belongs to plan 'p-train'"):
        make_plan(engine, out, name="p-val", split="val")
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "shard-000000.tar").write_bytes(b"")
    with pytest.raises(TolError, match=r"holds 1 \.tar file\(s\) no plan owns"):
        make_plan(engine, tmp_path / "stray", name="p-val", split="val")
    assert plan_names(engine) == ["p-train"]
    make_plan(engine, out, name="p-train", split="train")  # the same plan again is still a no-op


def test_plan_folder_that_cannot_exist_is_refused_before_recording(prepared, tmp_path: Path):
    _url, engine = prepared
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(TolError, match=r"output folder .*a-file/x cannot be used: (NotADirectoryError|FileExists)"):
        make_plan(engine, blocker / "x", name="p-val", split="val")
    assert plan_names(engine) == []


def test_write_with_failed_shards_exits_3_lists_them_and_retry_recovers(prepared, tmp_path: Path):
    url, engine = prepared
    out = tmp_path / "out"
    plan = make_plan(engine, out, name="p-val", split="val", per_shard=20)
    assert plan.n_shards >= 2
    out.rmdir()
    out.write_text("the folder was replaced by a file after planning")
    env = tol_env(url, tmp_path)
    failed = tol("shards", "write", plan.name, "--workers", "2", "--max-attempts", "2", env=env, cwd=tmp_path)
    assert failed.returncode == ExitCode.WORK_LEFT, (failed.stdout, failed.stderr)
    shard_lines = [line for line in failed.stdout.splitlines() if "failed shard" in line]
    assert len(shard_lines) == plan.n_shards
    assert all("after 2 attempts: " in line and "Error" in line for line in shard_lines), shard_lines
    assert_one_line_error(failed, 3, f"retry with `tol shards retry {plan.name} && tol shards write {plan.name}`")
    out.unlink()
    retried = tol("shards", "retry", plan.name, env=env, cwd=tmp_path)
    assert retried.returncode == 0 and f"{plan.n_shards} failed shards set back to pending" in retried.stdout
    written = tol("shards", "write", plan.name, "--workers", "2", env=env, cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    again = tol("shards", "write", plan.name, "--workers", "2", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "wrote 0 shards" in again.stdout
    assert again.stdout.count("\n  ") == 0  # no worker lines for a plan that was already finished
    # The format follows the extension: `--out x.parquet` alone writes Parquet (it once wrote CSV into it).
    exported = tol("catalog", "export", plan.name, "--out", str(tmp_path / "x.parquet"), env=env, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT COUNT(*) FROM plan_samples WHERE plan_name = :p AND written = 1"),
                                  {"p": plan.name}).scalar_one()
    assert rows > 0 and pq.read_table(tmp_path / "x.parquet").num_rows == rows


def test_worker_processes_that_cannot_start_report_once(prepared, tmp_path: Path):
    url, _engine = prepared
    with pytest.raises(TolError, match="no shard plan 'gone'") as raised:
        launch.run_local_workers(write_options(url, "gone", tmp_path / "cache"), 3)
    assert str(raised.value).count("no shard plan") == 1


def test_downgrade_that_drops_rows_needs_yes(prepared, tmp_path: Path):
    url, engine = prepared
    env = tol_env(url, tmp_path)
    refused = tol("db", "downgrade", "base", env=env, cwd=tmp_path)
    assert_one_line_error(refused, 2, "add --yes")
    assert "images (" in refused.stderr
    assert schema.current_revision(engine) == schema.head_revision()
    done = tol("db", "downgrade", "base", "--yes", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert schema.current_revision(engine) is None


def test_a_plan_records_its_codec_stack_and_is_not_resumed_with_another(prepared, tmp_path: Path):
    url, engine = prepared
    import cv2
    import PIL
    import simplejpeg

    plan = make_plan(engine, tmp_path / "out", per_shard=400)
    for library, version in (("simplejpeg", simplejpeg.__version__), ("opencv", cv2.__version__),
                             ("pillow", PIL.__version__)):
        assert f"{library}/{version}" in plan.codec
    stats = run_worker(write_options(url, plan.name, tmp_path / "cache"))
    assert stats.shards == plan.n_shards
    with engine.begin() as connection:
        assert set(connection.execute(text("SELECT codec FROM shards WHERE plan_id = :p"),
                                      {"p": plan.id}).scalars()) == {plan.codec}
        connection.execute(text("UPDATE shards SET state = 'pending' WHERE plan_id = :p AND shard_index = 0"),
                           {"p": plan.id})
        connection.execute(text("UPDATE shard_plans SET codec = 'pillow/9.0.0' WHERE id = :p"), {"p": plan.id})
    result = subprocess.run([TOL, "shards", "write", plan.name], env=tol_env(url, tmp_path), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == ExitCode.USAGE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"plan {plan.name}" in lines[0] and "'pillow/9.0.0'" in lines[0], lines
    assert "Traceback" not in result.stderr

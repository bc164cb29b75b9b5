"""Shard plans and writing: real tars read back with webdataset, byte-identical across runs and databases,
atomic under kills, leases that expire, late workers rejected."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import webdataset
import yaml
from sqlalchemy import text

from etl import exclusions, naming, schema, verify
from etl.errors import TolError
from etl.plan import PlanOptions, create_plan, get_plan, parse_bytes
from etl.reader import ImageReader, source_roots
from etl.write.launch import run_local_workers, write_plan
from etl.write.queue import ShardQueue
from etl.write.worker import WorkerContext, run_worker, write_shard
from tests.helpers import make_plan, prepared_catalog, sha256_of, write_options


def shard_hashes(out: Path) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in sorted(out.glob("shard-*.tar"))}


@pytest.fixture
def prepared(prepared_url, engine_of):
    return prepared_url, engine_of(prepared_url)


def test_plan_is_deterministic_and_leaves_out_excluded_and_unnamed(prepared, tmp_path: Path):
    _url, engine = prepared
    plan = make_plan(engine, tmp_path / "a")
    again, created = create_plan(engine, "p-train", PlanOptions(
        split_name="main", split="train", samples_per_shard=100, out_dir=str(tmp_path / "a")))
    assert not created and again.id == plan.id
    with pytest.raises(TolError, match="a plan never changes"):
        make_plan(engine, tmp_path / "a", per_shard=50)
    twin = make_plan(engine, tmp_path / "b", name="p-twin")
    with engine.connect() as connection:
        def members(plan_id):
            return connection.execute(text(
                "SELECT s.shard_index, m.position, m.image_id FROM shard_members AS m JOIN shards AS s "
                "ON s.id = m.shard_id WHERE s.plan_id = :p ORDER BY 1, 2"), {"p": plan_id}).all()
        first, second = members(plan.id), members(twin.id)
        in_split = connection.execute(text(
            "SELECT COUNT(*) FROM image_splits AS s JOIN images AS i ON i.id = s.image_id "
            "WHERE s.split_name = 'main' AND s.split = 'train' AND i.status = 'present'")).scalar_one()
        overlap = connection.execute(text(
            "SELECT COUNT(*) FROM shard_members AS m JOIN image_exclusions AS x ON x.image_id = m.image_id"
        )).scalar_one()
        sources_in_first_shard = connection.execute(text(
            "SELECT COUNT(DISTINCT i.source) FROM shard_members AS m JOIN shards AS s ON s.id = m.shard_id "
            "JOIN images AS i ON i.id = m.image_id WHERE s.plan_id = :p AND s.shard_index = 0"),
            {"p": plan.id}).scalar_one()
    assert [(s, p) for s, p, _ in first] == [(s, p) for s, p, _ in second]
    assert [i for *_, i in first] == [i for *_, i in second]
    assert plan.n_samples == len(first) and plan.n_excluded > 0
    assert plan.n_samples + plan.n_excluded + plan.n_unnamed == in_split
    assert overlap == 0
    assert sources_in_first_shard == 3  # shuffled across the whole split, not one folder at a time
    assert exclusions.report(engine).planned_excluded == 0


def test_exclusion_report_counts_the_planned_samples_an_exclusion_added_later_would_have_left_out(
        prepared, tmp_path: Path):
    """An exclusion added after a plan: the report counts the plan's samples it matches (a species listed on
    two lists counts each sample once), against counts made here from the tables."""
    _url, engine = prepared
    plan = make_plan(engine, tmp_path / "a")
    with engine.connect() as connection:
        planned = connection.execute(text("""
            SELECT i.id, i.source, i.member, i.inat21_filename, i.bioscan_filename, t.genus, t.species
            FROM shard_members AS m JOIN shards AS s ON s.id = m.shard_id JOIN images AS i ON i.id = m.image_id
            JOIN taxa AS t ON t.id = i.taxon_id WHERE s.plan_id = :p"""), {"p": plan.id}).all()
    by_species: dict[tuple[str, str], int] = {}
    for row in planned:
        if row.genus and row.species:
            by_species[(row.genus, row.species)] = by_species.get((row.genus, row.species), 0) + 1
    (genus, epithet), samples = max(by_species.items(), key=lambda item: (item[1], item[0]))
    image = next(row for row in planned if row.source == "inat21")
    entries = [
        {"list_name": "late-a", "kind": "species", "reason": "test", "entry": f"{genus} {epithet}",
         "file_name": None, "genus": genus, "species": epithet},
        {"list_name": "late-b", "kind": "species", "reason": "test", "entry": f"{genus} {epithet}",
         "file_name": None, "genus": genus, "species": epithet},
        {"list_name": "late-a", "kind": "image", "reason": "test", "entry": image.inat21_filename,
         "file_name": image.inat21_filename, "genus": None, "species": None},
    ]
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO exclusions (list_name, kind, reason, entry, file_name, genus, species) "
            "VALUES (:list_name, :kind, :reason, :entry, :file_name, :genus, :species)"), entries)
    file_names = {"eol": "member", "inat21": "inat21_filename", "bioscan": "bioscan_filename"}
    excluded = {row.id for row in planned if (row.genus, row.species) == (genus, epithet)
                or getattr(row, file_names[row.source]) == image.inat21_filename}
    report = exclusions.report(engine)
    assert samples >= 2 and report.planned_unseen_species == samples
    assert image.id in excluded and report.planned_excluded == len(excluded) > samples
    assert report.overlaps


@pytest.mark.parametrize(("options", "message"), [
    ({"split": "test"}, "--split must be one of"),
    ({"resize": "stretch"}, "--resize must be one of"),
    ({"quality": 0}, "--quality must be 1 to 100"),
    ({"txt_field": "nope"}, "--txt-field must be one of"),
    ({"samples_per_shard": 10, "shard_bytes": 10}, "not both"),
])
def test_plan_option_errors(options, message):
    with pytest.raises(TolError, match=message):
        PlanOptions(**{"split_name": "main", "split": "train", **options}).check()


@pytest.mark.parametrize(("value", "parsed"), [("3GB", 3_000_000_000), ("500MB", 500_000_000), ("3e9", 3e9),
                                               ("1GiB", 2**30), ("1024", 1024)])
def test_parse_bytes(value, parsed):
    assert parse_bytes(value) == parsed


def test_write_read_back_verify_and_export(prepared, tmp_path: Path):
    url, engine = prepared
    out = tmp_path / "out"
    plan = make_plan(engine, out)
    lines = write_plan(write_options(url, plan.name, tmp_path / "cache"), 2).lines()
    assert "wrote" in lines[-2] and "shard index" in lines[-1]
    with engine.connect() as connection:
        states = dict(connection.execute(text(
            "SELECT state, COUNT(*) FROM shards WHERE plan_id = :p GROUP BY state"), {"p": plan.id}).all())
        errors = connection.execute(text(
            "SELECT i.suspect, e.reason FROM image_errors AS e JOIN images AS i ON i.id = e.image_id")).all()
        written = connection.execute(text(
            "SELECT COUNT(*) FROM plan_samples WHERE plan_name = :p AND written = 1"), {"p": plan.name}).scalar_one()
    assert states == {"done": plan.n_shards}
    # The hostile images: the truncated ones are recorded and skipped, every other mode is converted.
    assert errors and all("truncated" in (suspect or "") and "cannot decode" in reason for suspect, reason in errors)
    keys = []
    for tar in sorted(out.glob("shard-*.tar")):
        for sample in webdataset.WebDataset(str(tar), shardshuffle=False, empty_check=False):
            keys.append(sample["__key__"])
            record = json.loads(sample["json"])
            captions = naming.captions(record["scientific_name"], record["taxonomic_name"],
                                       sample["taxontag.txt"].decode()[len("a photo of "):-1], "")
            assert sample["taxonomic_name.txt"].decode() == record["taxonomic_name"]
            assert sample["common_name.txt"].decode() == record["common"]
            assert sample["txt"] == sample["taxontag_com.txt"]
            assert sample["taxon.txt"].decode() == captions["taxon.txt"]
    assert len(keys) == len(set(keys)) == written == plan.n_samples - len(errors)
    index = json.loads((out / "shardindex.json").read_text())
    assert sum(s["nsamples"] for s in index["shardlist"]) == written
    assert all((out / s["url"]).stat().st_size == s["filesize"] for s in index["shardlist"])
    first_idx = (out / "shard-000000.idx").read_text().splitlines()
    assert first_idx[0].startswith("v1.2 ") and int(first_idx[0].split()[1]) == len(first_idx) - 1
    _ext, offset, size, name = first_idx[1].split()[:4]
    with open(out / "shard-000000.tar", "rb") as handle:
        handle.seek(int(offset))
        assert handle.read(int(size)).decode().startswith("a photo of ") and name.endswith(".com.txt")
    results = verify.verify(engine, url, plan.name, full=True, workers=2)
    assert all(not r.problems for r in results), [r.problems for r in results if r.problems]
    from etl import export

    assert export.export(engine, plan.name, "csv", tmp_path / "c.csv") == written
    with open(tmp_path / "c.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["split"] == "train" and all(row["common"] for row in rows)
    assert sum(1 for row in rows if row["eol_content_id"]) + sum(1 for row in rows if row["inat21_filename"]) \
        + sum(1 for row in rows if row["bioscan_filename"]) == written
    import pyarrow.parquet as pq

    assert export.export(engine, plan.name, "parquet", tmp_path / "c.parquet") == written
    assert pq.read_table(tmp_path / "c.parquet").num_rows == written
    check_positions_and_sidecars(engine, plan.name, out, rows, written)
    # A finished plan re-run makes zero claims.
    stats = run_worker(write_options(url, plan.name, tmp_path / "cache"))
    assert stats.claims == 0


def check_positions_and_sidecars(engine, plan_name: str, out: Path, rows: list[dict], written: int) -> None:
    """`position` is the index in the tar (as tarfile and the `.idx` count), and the sidecars agree."""
    tar_keys = {}
    for tar in sorted(out.glob("shard-*.tar")):
        with tarfile.open(tar) as archive:
            keys = [name.split(".", 1)[0] for name in archive.getnames()]
        tar_keys[tar.name] = list(dict.fromkeys(keys))
        idx_lines = tar.with_suffix(".idx").read_text().splitlines()[1:]
        assert [line.split()[3].split(".", 1)[0] for line in idx_lines] == tar_keys[tar.name]
    assert all(tar_keys[Path(row["shard"]).name][int(row["position"])] == row["treeoflife_id"] for row in rows)
    with engine.connect() as connection:
        moved = connection.execute(text(
            "SELECT COUNT(*) FROM plan_samples WHERE plan_name = :p AND written = 1 "
            "AND position <> planned_position"), {"p": plan_name}).scalar_one()
    assert moved > 0  # an image failed before them in their shard
    sizes = json.loads((out / "sizes.json").read_text())
    assert sizes == {name: len(keys) for name, keys in tar_keys.items()}
    assert int((out / "__len__").read_text()) == written == sum(sizes.values())
    card = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    features = {feature["name"]: feature for feature in card["dataset_info"]["features"]}
    with tarfile.open(out / "shard-000000.tar") as archive:
        first = archive.getnames()[:13]
        record = json.loads(archive.extractfile(first[[n.endswith(".json") for n in first].index(True)]).read())
    assert set(features) == {"__key__", "__url__"} | {name.split(".", 1)[1] for name in first}
    assert {f["name"] for f in features["json"]["struct"]} == set(record)
    assert card["dataset_info"]["splits"][0]["num_examples"] == written


def test_verify_catches_a_corrupted_shard_and_reset_rewrites_it(prepared, tmp_path: Path):
    url, engine = prepared
    out = tmp_path / "out"
    plan = make_plan(engine, out, name="p-val", split="val", per_shard=20)
    run_local_workers(write_options(url, plan.name, tmp_path / "cache"), 1)
    target = out / "shard-000000.tar"
    good = target.read_bytes()
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0xFF
    target.write_bytes(bytes(damaged))
    results = verify.verify(engine, url, plan.name, full=True, reset=True)
    assert [r.problems for r in results if r.problems] == [["sha256 differs from the manifest"]]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT state FROM shards WHERE plan_id = :p AND shard_index = 0"),
                                  {"p": plan.id}).scalar_one() == "pending"
    run_local_workers(write_options(url, plan.name, tmp_path / "cache"), 1)
    assert target.read_bytes() == good
    assert not any(r.problems for r in verify.verify(engine, url, plan.name, full=True))


def test_byte_identical_across_runs_and_databases(sample_collection: Path, empty_sqlite_url, empty_pg_url,
                                                  engine_of, tmp_path: Path):
    hashes = []
    for number, url in enumerate((empty_sqlite_url, empty_pg_url, empty_sqlite_url)):
        engine = engine_of(url)
        if number < 2:
            schema.upgrade(engine)
            prepared_catalog(engine, sample_collection)
            make_plan(engine, tmp_path / f"out{number}", name="p-val", split="val", per_shard=15)
        else:  # a second run on SQLite: wipe the shards and write them again
            with engine.begin() as connection:
                connection.execute(text("UPDATE shards SET state = 'pending', attempts = 0"))
            for path in (tmp_path / "out0").iterdir():
                path.unlink()
        run_local_workers(write_options(url, "p-val", tmp_path / "cache"), 1)
        hashes.append(shard_hashes(tmp_path / ("out0" if number != 1 else "out1")))
        with engine.connect() as connection:
            manifest = dict(connection.execute(text("SELECT path, sha256 FROM shards")).all())
        assert manifest == hashes[-1]
    assert hashes[0] == hashes[1] == hashes[2] and len(hashes[0]) >= 2


def test_late_worker_is_rejected(prepared, tmp_path: Path):
    _url, engine = prepared
    out = tmp_path / "out"
    plan = make_plan(engine, out, name="p-val", split="val", per_shard=1000)
    reader = ImageReader(source_roots(engine, {}), tmp_path / "cache")
    queue = ShardQueue(engine)
    late = queue.claim(plan.id, "late", lease_seconds=60, max_attempts=3)
    with engine.begin() as connection:  # the late worker was stopped past its lease
        connection.execute(text("UPDATE shards SET lease_until = 0 WHERE id = :i"), {"i": late.shard_id})
    winner = queue.claim(plan.id, "winner", lease_seconds=60, max_attempts=3)
    assert winner.shard_id == late.shard_id and winner.attempts == 2
    context = WorkerContext(engine, plan, out, reader, "late", lease_seconds=60)
    assert write_shard(context, late).status == "lost"
    assert not (out / "shard-000000.tar").exists()
    winning = WorkerContext(engine, plan, out, reader, "winner", lease_seconds=60)
    assert write_shard(winning, winner).status == "done"
    with engine.connect() as connection:
        worker, sha = connection.execute(text("SELECT worker, sha256 FROM shards WHERE id = :i"),
                                         {"i": winner.shard_id}).one()
    assert worker == "winner" and sha == sha256_of(out / "shard-000000.tar")
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_killed_worker_leaves_no_partial_file(prepared, tmp_path: Path):
    url, engine = prepared
    out = tmp_path / "out"
    plan = make_plan(engine, out, per_shard=10_000)  # one big shard, so the kill lands mid-shard
    env = {**os.environ, "TOL_DATABASE_URL": url, "TOL_CACHE_DIR": str(tmp_path / "cache")}
    worker = subprocess.Popen([sys.executable, "-c", "from etl.cli import main; main()", "shards", "write",
                               plan.name, "--workers", "1", "--lease", "2"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.endswith(".tmp") and p.stat().st_size > 200_000
                                             for p in out.glob(".*") if p.exists()):
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert not (out / "shard-000000.tar").exists()
    assert [p for p in out.glob(".shard-000000.tar.*.tmp")]  # the partial file is hidden, never final
    started = time.time()
    stats = run_worker(write_options(url, plan.name, tmp_path / "cache", lease_seconds=2))
    assert stats.shards == 1 and time.time() - started >= 0.5  # it had to wait for the lease to expire
    assert sorted(p.name for p in out.iterdir()) == ["shard-000000.idx", "shard-000000.tar"]
    with engine.connect() as connection:
        attempts, sha = connection.execute(text("SELECT attempts, sha256 FROM shards WHERE plan_id = :p"),
                                           {"p": plan.id}).one()
    assert attempts == 2 and sha == sha256_of(out / "shard-000000.tar")


def test_failed_attempts_mark_the_shard_failed(prepared, tmp_path: Path):
    _url, engine = prepared
    plan = make_plan(engine, tmp_path / "out", name="p-val", split="val", per_shard=1000)
    queue = ShardQueue(engine)
    for _ in range(2):
        held = queue.claim(plan.id, "w", 60, max_attempts=2)
        queue.fail_attempt(held, "disk full", max_attempts=2)
    assert queue.claim(plan.id, "w", 60, max_attempts=2) is None
    result = queue.status(get_plan(engine, plan.name))
    assert result.states["failed"] == 1 and result.failed == [(0, 2, "disk full")]

"""`tol catalog export` against expectations computed here from the plan's tables, on both databases.

The expected rows are built in Python from `shards`, `shard_members`, `image_errors`, `images` and `taxa` alone,
with the display rules of `etl.naming` — not from the views the export reads — for a plan whose shards are
marked done (one left pending), with failed images (later samples of their shard move up in the tar), and with
images whose taxon is gone (their samples are not exported, as they are not in `plan_samples`). The catalog is
checked as CSV and as Parquet (columns, types, values, order, row groups), and licenses.csv row by row; the
licenses file is the same, byte for byte, whether SQLite is read by one thread or several, in one range or many.
The SQLite reader's child process (etl.sqlite_arrow) is checked on its own: column types from every row, one-line
errors, and the ADBC SQLite library kept out of the calling process.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from etl import export, naming, provenance
from tests.helpers import make_plan

RANKS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")


@pytest.fixture
def exported_plan(prepared_url, engine_of, tmp_path: Path):
    """A plan of the prepared catalog with every shard done but the last (pending), two failed images in the
    first shard and one in the second (plus an error outside any shard), one sample whose image lost its taxon
    and one whose taxon id names no taxon; returns the engine and the plan."""
    engine = engine_of(prepared_url)
    plan = make_plan(engine, tmp_path / "out", per_shard=60)
    assert plan.n_shards >= 4
    with engine.begin() as connection:
        connection.execute(text("UPDATE shards SET state = 'done' WHERE plan_id = :p AND shard_index < :last"),
                           {"p": plan.id, "last": plan.n_shards - 1})
        members = connection.execute(text("""
            SELECT sh.shard_index, sh.id, m.position, m.image_id FROM shards AS sh
            JOIN shard_members AS m ON m.shard_id = sh.id WHERE sh.plan_id = :p
            ORDER BY sh.shard_index, m.position"""), {"p": plan.id}).all()
        by_shard: dict[int, list] = {}
        for index, shard_id, position, image_id in members:
            by_shard.setdefault(index, []).append((shard_id, position, image_id))
        failed = [by_shard[0][3], by_shard[0][10], by_shard[1][0]]
        for shard_id, slot, image_id in failed:
            connection.execute(text("INSERT INTO image_errors (image_id, shard_id, stage, reason, planned_position) "
                                    "VALUES (:i, :s, 'write', 'cannot decode', :p)"),
                               {"i": image_id, "s": shard_id, "p": slot})
        connection.execute(text("INSERT INTO image_errors (image_id, shard_id, stage, reason) "
                                "VALUES (:i, NULL, 'ingest', 'unreadable')"), {"i": by_shard[2][5][2]})
        connection.execute(text("UPDATE images SET taxon_id = NULL WHERE id = :i"), {"i": by_shard[0][20][2]})
        connection.execute(text("UPDATE images SET taxon_id = -1 WHERE id = :i"), {"i": by_shard[2][7][2]})
    return engine, plan


def expected_rows(engine, plan) -> list[dict]:
    """The catalog rows of `plan`, computed from its tables with etl.naming's rules."""
    with engine.connect() as connection:
        shards = connection.execute(text(
            "SELECT id, shard_index, path, state FROM shards WHERE plan_id = :p ORDER BY shard_index"),
            {"p": plan.id}).all()
        members = connection.execute(text(
            "SELECT shard_id, position, image_id FROM shard_members ORDER BY shard_id, position")).all()
        errors = connection.execute(text("SELECT shard_id, image_id FROM image_errors")).all()
        images = {row[0]: row[1:] for row in connection.execute(text(
            "SELECT id, eol_content_id, eol_page_id, bioscan_part, bioscan_filename, inat21_filename, "
            "inat21_cls_name, inat21_cls_num, taxon_id FROM images"))}
        taxa = {row[0]: row[1:] for row in connection.execute(text(
            'SELECT id, kingdom, phylum, "class", "order", family, genus, species, common_name, scientific_name, '
            "taxonomic_name FROM taxa"))}
    rows = []
    for shard_id, _index, path, state in shards:
        if state != "done":
            continue
        slots = [(position, image_id) for s, position, image_id in members if s == shard_id]
        failed = {image_id for s, image_id in errors if s == shard_id}
        failed_slots = [position for position, image_id in slots if image_id in failed]
        for position, image_id in slots:
            if image_id in failed:
                continue
            *identity, taxon_id = images[image_id]
            if taxon_id not in taxa:
                continue
            *ranks, common, scientific, taxonomic = taxa[taxon_id]
            values = [plan.split, image_id, *identity, *naming.display(tuple(ranks)),
                      naming.common_or_fallback(common, scientific, taxonomic), path,
                      position - sum(1 for slot in failed_slots if slot < position)]
            rows.append(dict(zip(export.COLUMNS, values, strict=True)))
    return rows


def test_catalog_csv_and_parquet(exported_plan, tmp_path: Path, monkeypatch):
    engine, plan = exported_plan
    expected = expected_rows(engine, plan)
    with engine.connect() as connection:
        in_done = connection.execute(text("SELECT SUM(n_planned) FROM shards WHERE plan_id = :p AND state = 'done'"),
                                     {"p": plan.id}).scalar_one()
    assert len({row["shard"] for row in expected}) == plan.n_shards - 1
    assert len(expected) == in_done - 5  # three failed images, two without a taxon
    assert [row["position"] for row in expected if row["shard"] == expected[0]["shard"]][:4] == [0, 1, 2, 3]

    assert export.export(engine, plan.name, "csv", tmp_path / "c.csv") == len(expected)
    with open(tmp_path / "c.csv", encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == list(export.COLUMNS)
    assert lines[1:] == [["" if v is None else str(v) for v in row.values()] for row in expected]

    monkeypatch.setattr(export, "BATCH", 70)  # row groups of 70 rows, whatever size the reads come in
    assert export.export(engine, plan.name, "parquet", tmp_path / "c.parquet") == len(expected)
    table = pq.read_table(tmp_path / "c.parquet")
    assert table.schema == pa.schema([(c, pa.int64() if c in export.INTEGER_COLUMNS else pa.string())
                                      for c in export.COLUMNS])
    assert table.to_pylist() == expected
    metadata = pq.ParquetFile(tmp_path / "c.parquet").metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert set(sizes[:-1]) == {70} and 0 < sizes[-1] <= 70

    # The view composed of the same parts shows the same rows.
    with engine.connect() as connection:
        viewed = connection.execute(text(
            f"SELECT {', '.join('shard_path' if c == 'shard' else f'{chr(34)}{c}{chr(34)}' for c in export.COLUMNS)} "
            "FROM plan_samples WHERE plan_name = :p AND written = 1 ORDER BY shard_index, position"),
            {"p": plan.name}).all()
    assert [tuple(row.values()) for row in expected] == [tuple(row) for row in viewed]


def test_licenses(exported_plan, sample_collection: Path, tmp_path: Path):
    engine, plan = exported_plan
    provenance.load(engine, {"eol_media_manifest": sample_collection / "eol" / "media_manifest",
                             "inat21_annotations": sample_collection / "inat21" / "train.json"})
    expected = expected_rows(engine, plan)
    with engine.connect() as connection:
        licenses = {row[0]: row[1:] for row in connection.execute(text(
            "SELECT image_id, md5, source_url, copy_url, license_name, rights_holder, license_link, title "
            "FROM image_licenses"))}
    wanted = [[row["treeoflife_id"], "" if row["eol_content_id"] is None else str(row["eol_content_id"]),
               "" if row["eol_page_id"] is None else str(row["eol_page_id"]),
               *(value or export.NOT_PROVIDED for value in licenses[row["treeoflife_id"]])] for row in expected]
    assert export.export(engine, plan.name, "csv", tmp_path / "l.csv", what="licenses") == len(expected)
    with open(tmp_path / "l.csv", encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == list(export.LICENSE_COLUMNS) and lines[1:] == wanted
    assert any(line[6] != export.NOT_PROVIDED for line in wanted)  # some license is known

    assert export.export(engine, plan.name, "parquet", tmp_path / "l.parquet", what="licenses") == len(expected)
    table = pq.read_table(tmp_path / "l.parquet")
    assert table.schema.field("eol_page_id").type == pa.int64()
    assert [[("" if v is None else str(v)) for v in row.values()] for row in table.to_pylist()] == wanted


def test_sqlite_license_readers_and_ranges_make_the_same_file(prepared_sqlite_url, engine_of, tmp_path: Path,
                                                              monkeypatch):
    engine = engine_of(prepared_sqlite_url)
    plan = make_plan(engine, tmp_path / "out", per_shard=40)
    with engine.begin() as connection:
        connection.execute(text("UPDATE shards SET state = 'done' WHERE plan_id = :p"), {"p": plan.id})
    monkeypatch.setattr(export, "BATCH", 50)
    files = []
    for readers, part_rows in ((1, 10**9), (2, 90), (3, 1)):
        monkeypatch.setattr(export, "READERS", readers)
        monkeypatch.setattr(export, "SQLITE_PART_ROWS", part_rows)
        files.append(tmp_path / f"l-{readers}.parquet")
        assert export.export(engine, plan.name, "parquet", files[-1], what="licenses") == plan.n_samples
    assert files[0].read_bytes() == files[1].read_bytes() == files[2].read_bytes()


@pytest.mark.parametrize(("shards", "slots", "order"), [
    ([0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 2, 3]),  # already in tar order: kept as it is
    ([1, 0, 1, 0], [1, 1, 0, 0], [3, 1, 2, 0]),
    ([2, 0, 2, 1], [0, 5, 3, 0], [1, 3, 0, 2]),
    ([0, 0], [7, 2], [1, 0]),  # one shard, slots reversed
    ([], [], []),
])
def test_members_are_put_in_tar_order(shards, slots, order):
    import numpy as np

    assert export._tar_order(np.array(shards, dtype=np.int64), np.array(slots, dtype=np.int64)).tolist() == order


def test_sqlite_reader_types_every_batch_in_a_child(tmp_path: Path):
    """The ADBC SQLite driver types a column from the rows of its first batch: a text column NULL in every row of
    the first batch (`BATCH_ROWS`) and text later, or NULL in all, still comes out as the schema says; and the
    driver's library is loaded in the child only (two SQLite libraries in one process break each other's
    locks)."""
    import sqlite3
    import sys

    from etl import sqlite_arrow

    rows = sqlite_arrow.BATCH_ROWS + 5000
    first_text = sqlite_arrow.BATCH_ROWS + 1000
    path = tmp_path / "types.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (n INTEGER NOT NULL, label TEXT, count INTEGER, never TEXT)")
        connection.executemany("INSERT INTO t VALUES (?, ?, ?, NULL)",
                               ((n, None if n < first_text else f"label {n}", None if n % 7 else n)
                                for n in range(rows)))
    connection.close()
    schema = pa.schema([("n", pa.int64()), ("label", pa.string()), ("count", pa.int64()), ("never", pa.string())])
    table = sqlite_arrow.read(path, "SELECT n, label, count, never FROM t ORDER BY n", schema)
    assert table.schema == schema
    assert table["n"].to_pylist() == list(range(rows))
    assert table["label"].to_pylist() == [None if n < first_text else f"label {n}" for n in range(rows)]
    assert table["count"].to_pylist() == [None if n % 7 else n for n in range(rows)]
    assert table["never"].null_count == rows
    assert "adbc_driver_sqlite" not in sys.modules
    with sqlite3.connect(path) as connection:  # the file is free for a writer afterwards
        connection.execute("INSERT INTO t VALUES (-1, 'x', 1, NULL)")
    connection.close()
    assert sqlite_arrow.read(path, "SELECT COUNT(*) FROM t", pa.schema([("n", pa.int64())]))["n"].to_pylist() == [
        rows + 1]
    assert sqlite_arrow.read(path, "SELECT n FROM t WHERE n < 0", pa.schema([("n", pa.int64())])).num_rows == 1
    assert sqlite_arrow.read(path, "SELECT n FROM t WHERE n > 1e12", pa.schema([("n", pa.int64())])).num_rows == 0


@pytest.mark.parametrize(("name", "sql", "message"), [
    ("types.sqlite", "SELECT absent_column FROM t", r"could not read the catalog .*types\.sqlite: .*no such column"),
    ("absent.sqlite", "SELECT 1", r"could not read the catalog .*absent\.sqlite: .*"),
])
def test_sqlite_reader_fails_in_one_line(tmp_path: Path, name: str, sql: str, message: str):
    import sqlite3

    from etl import sqlite_arrow
    from etl.errors import EnvironmentFault

    with sqlite3.connect(tmp_path / "types.sqlite") as connection:
        connection.execute("CREATE TABLE t (n INTEGER)")
    connection.close()
    with pytest.raises(EnvironmentFault, match=message) as raised:
        sqlite_arrow.read(tmp_path / name, sql, pa.schema([("n", pa.int64())]))
    assert "\n" not in str(raised.value)


def test_ranges_cover_the_shards_in_order():
    shards = [(0, 40), (1, 40), (2, 40), (5, 10), (6, 70)]
    assert export._ranges(shards, 80) == [(0, 1), (2, 6)]
    assert export._ranges(shards, 1) == [(0, 0), (1, 1), (2, 2), (5, 5), (6, 6)]
    assert export._ranges(shards, 10**6) == [(0, 6)]



A, B, C = (f"{n:08x}-0000-5000-8000-{n:012x}" for n in (10, 11, 12))


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
@pytest.mark.parametrize(("members", "images", "rows"), [
    ([A, B, C], [C, A, B], [1, 2, 0]),
    ([B, B, A], [A, B], [1, 1, 0]),
    ([C, A], [A, B], [-1, 0]),  # C has no image
    (["a", "bb", A], ["bb", A, "a"], [2, 0, 1]),  # ids of several lengths: looked up as texts
    ([A], [], [-1]),
    ([], [A], []),
])
def test_members_find_their_image_rows(members, images, rows, parts, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(export, "JOIN_PARTS", parts)
    with ThreadPoolExecutor(2) as pool:
        found = export._image_rows(pa.chunked_array([members[:1], members[1:]], pa.string()),
                                   pa.chunked_array([images[:2], [], images[2:]], pa.string()), pool)
    assert found.tolist() == rows


def test_ids_of_one_width_are_viewed_as_fixed_binary():
    ids = pa.chunked_array([pa.array(["x", A, B], pa.string()).slice(1), [], [C]])  # the first's offsets start at 1
    fixed = export._fixed_width(ids)
    assert fixed is not None and fixed.type == pa.binary(36)
    assert fixed.to_pylist() == [A.encode(), B.encode(), C.encode()]
    assert export._fixed_width(pa.chunked_array([[A, None]], pa.string())) is None
    assert export._fixed_width(pa.chunked_array([[A], ["short"]], pa.string())) is None
    assert export._fixed_width(pa.chunked_array([[]], pa.string())) is None


@pytest.mark.parametrize(("table_keys", "keys", "rows"), [
    ([30, 10, 20], [10, 20, 30, 10], [1, 2, 0, 1]),
    ([30, 10], [20, None, 30], [-1, -1, 0]),  # a missing key and a NULL one
    ([], [5, None], [-1, -1]),
    ([-(2**62), 2**62], [2**62], [1]),  # 63-bit taxon ids
])
def test_names_rows_by_taxon_id(table_keys, keys, rows):
    found = export._rows_by_key(pa.chunked_array([table_keys], pa.int64()),
                                pa.chunked_array([keys[:1], keys[1:]], pa.int64()))
    assert found.tolist() == rows

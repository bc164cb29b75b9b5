"""A published release: its map and split imported (`tol import-release`), its EOL archives of
`<treeoflife_id>.jpg` ingested through the map, `tol reproduce` from its files, `tol catalog compare`.

Expectations come from the fixture's own `release.json` (what the generator wrote) and from the shards read back
with `tarfile`, never from the code under test.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import text

from etl import catalog, config, splits
from etl.compare import deliberate, difference_kind
from etl.errors import TolError
from etl.plan import PlanOptions, create_plan
from etl.release import importer
from etl.release.inputs import (
    CATALOG_COLUMNS,
    MapEntry,
    SplitEntry,
    entry_of_catalog_row,
    parse_flag,
    parse_id,
    read_inputs,
    split_of_flags,
)
from etl.release.reproduce import ReleaseFiles, ReproduceReport, _fill_report, reproduce

ID = "0f3c1b2e-9d4a-4b1e-8c3d-5a6b7c8d9e0f"
OTHER = "11111111-2222-4333-8444-555555555555"


# ============================================================================================== rules


@pytest.mark.parametrize(("value", "expected"), [
    (ID, ID), (f" {ID} ", ID), (ID.upper(), None), (ID[:-1], None), ("", None), (None, None), (12, None)])
def test_parse_id(value, expected):
    assert parse_id(value) == expected


@pytest.mark.parametrize(("is_val", "is_small", "expected"), [
    (0, 0, ("train", False)), (1, 0, ("val", False)), (0, 1, ("train", True)), ("1", "0", ("val", False)),
    (1, 1, None), (2, 0, None), ("yes", 0, None), (None, 0, None), (True, 0, None)])
def test_split_of_flags(is_val, is_small, expected):
    assert split_of_flags(is_val, is_small) == expected
    assert parse_flag(is_val) in (None, True, False)


@pytest.mark.parametrize(("row", "expected"), [
    ({"eol_content_id": "12784812", "eol_page_id": "51655800"}, MapEntry(ID, "eol", 12784812, 51655800)),
    ({"bioscan_part": "3", "bioscan_filename": "a.jpg"}, MapEntry(ID, "bioscan", bioscan_part=3,
                                                                 bioscan_filename="a.jpg")),
    ({"inat21_filename": "b.jpg", "inat21_cls_name": "Animalia_x", "inat21_cls_num": "0"},
     MapEntry(ID, "inat21", inat21_filename="b.jpg", inat21_cls_name="Animalia_x", inat21_cls_num=0)),
    ({}, "names no source"),
    ({"eol_content_id": "1", "eol_page_id": "2", "bioscan_part": "1", "bioscan_filename": "a.jpg"},
     "more than one source"),
    ({"eol_content_id": "x", "eol_page_id": "2"}, "must both be integers"),
    ({"inat21_filename": "b.jpg"}, "cls_num must be an integer"),
])
def test_entry_of_catalog_row(row, expected):
    result = entry_of_catalog_row({"treeoflife_id": ID, **row})
    if isinstance(expected, str):
        assert isinstance(result, str) and expected in result
    else:
        assert result == expected


@pytest.mark.parametrize(("column", "ours", "published", "kind", "is_deliberate"), [
    ("genus", "Pica", "pica", "case only", True),
    ("family", "Corvidae", "", "filled here", True),
    ("kingdom", "", "Orthornavirae", "emptied here", True),
    ("kingdom", "Plantae", "Viridiplantae", "renamed", True),
    ("common", "Black-billed Magpie", "Pica hudsonia", "renamed", True),
    ("genus", "Pica", "Corvus", "renamed", False),
    ("eol_page_id", "1", "2", "differs", False),
    ("inat21_cls_name", "a", "A", "differs", False),
])
def test_difference_kinds(column, ours, published, kind, is_deliberate):
    assert difference_kind(column, ours, published) == kind
    assert (deliberate(column, kind) is not None) == is_deliberate


def test_reject_reasons_are_counted_by_kind():
    from etl.release.inputs import ReleaseReject, iter_reasons

    reasons = ["unknown split value 'test'", "unknown split value is_val=2, is_train_small=0",
               f"duplicate treeoflife_id {ID} (first at mapping.sqlite:inat21:1)",
               f"duplicate treeoflife_id {OTHER} (first at catalog.csv:2)",
               "identity mapped twice: bioscan (1, 3000017.jpg) is already x", "row names no source (every …)"]
    assert iter_reasons(ReleaseReject("mapping", "here", r) for r in reasons) == {
        "duplicate treeoflife_id": 2, "identity mapped twice": 1, "row names no source": 1,
        "unknown split value": 2}


def _mapping_file(path: Path, eol: list[tuple], splits_rows: list[tuple]) -> Path:
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE eol (content_id INTEGER, page_id INTEGER, evobio10m_id TEXT)")
    connection.execute("CREATE TABLE inat21 (filename TEXT, cls_name TEXT, cls_num INTEGER, evobio10m_id TEXT)")
    connection.execute("CREATE TABLE bioscan (part INTEGER, filename TEXT, evobio10m_id TEXT)")
    connection.execute("CREATE TABLE split (evobio10m_id TEXT, is_val INTEGER, is_train_small INTEGER)")
    connection.executemany("INSERT INTO eol VALUES (?, ?, ?)", eol)
    connection.executemany("INSERT INTO split VALUES (?, ?, ?)", splits_rows)
    connection.commit()
    connection.close()
    return path


def _catalog_file(path: Path, rows: list[tuple[str, str, int, int]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, CATALOG_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for split, tol_id, content, page in rows:
            writer.writerow({**dict.fromkeys(CATALOG_COLUMNS, ""), "split": split, "treeoflife_id": tol_id,
                             "eol_content_id": content, "eol_page_id": page, "common": "x"})
    return path


def test_both_inputs_report_disagreements_and_the_catalog_gives_the_split(tmp_path: Path):
    third = "22222222-3333-4444-8555-666666666666"
    fourth = "33333333-3333-4444-8555-666666666666"
    mapping = _mapping_file(tmp_path / "mapping.sqlite", [(1, 2, ID), (3, 4, OTHER), (7, 8, fourth)],
                            [(ID, 0, 1), (OTHER, 1, 0), (fourth, 0, 0)])
    published = _catalog_file(tmp_path / "catalog.csv", [
        ("val", ID, 1, 2), ("train", third, 5, 6), ("train", fourth, 9, 9)])
    (tmp_path / "a").mkdir()
    result = read_inputs(mapping, published, tmp_path / "a")
    reasons = sorted(d.reason for d in result.disagreements)
    assert reasons == ["catalog.csv names eol (9, 9), mapping.sqlite eol (7, 8)",
                       "catalog.csv puts it in val, mapping.sqlite in train + train_small",
                       "in catalog.csv, not in mapping.sqlite"]
    assert list(result.splits()) == [SplitEntry(ID, "val", False)]  # OTHER: in the mapping only
    assert [e.treeoflife_id for e in result.entries()] == sorted([ID, OTHER, fourth])
    assert result.only_in_mapping == 1 and result.rejects == []
    result.close()
    (tmp_path / "b").mkdir()
    alone = read_inputs(mapping, None, tmp_path / "b")
    assert list(alone.splits()) == sorted([SplitEntry(ID, "train", True), SplitEntry(OTHER, "val", False),
                                           SplitEntry(fourth, "train", False)])
    alone.close()
    with pytest.raises(TolError, match="give --mapping"):
        read_inputs(None, None, tmp_path)


# ============================================================================================== fixture


@pytest.fixture(scope="session")
def release_collection(tmp_path_factory) -> Path:
    """A small sample collection with its release fixture (read-only)."""
    from etl import sampledata
    from etl.sampledata import release

    out = tmp_path_factory.mktemp("release") / "collection"
    sampledata.generate(out, images=160, seed=11)
    release.write(out, seed=11)
    return out


def _expected(collection: Path) -> dict:
    return json.loads((collection / "release" / "release.json").read_text())


def test_readers_count_every_malformed_row_of_the_fixture(release_collection: Path, tmp_path: Path):
    expected = _expected(release_collection)
    metadata = release_collection / "release" / "metadata"
    for name, mapping, published, wanted in (
            ("mapping", metadata / "mapping.sqlite", None, expected["mapping_rejects"]),
            ("catalog", None, metadata / "catalog.csv", expected["catalog_rejects"])):
        (tmp_path / name).mkdir()
        inputs = read_inputs(mapping, published, tmp_path / name)
        assert sorted(e.treeoflife_id for e in inputs.entries()) == sorted(expected["splits"])
        assert {s.treeoflife_id: [s.split, s.in_train_small] for s in inputs.splits()} == expected["splits"]
        assert [any(reason in r.reason for r in inputs.rejects) for reason in wanted] == [True] * len(wanted), name
        assert len(inputs.rejects) == len(wanted), inputs.rejects
        inputs.close()


def test_mapping_file_without_its_tables_is_one_error(tmp_path: Path):
    import sqlite3

    bad = tmp_path / "mapping.sqlite"
    sqlite3.connect(bad).close()
    with pytest.raises(TolError, match=r"mapping.sqlite: table eol\(content_id, page_id, evobio10m_id\)"):
        read_inputs(bad, None, tmp_path)
    with pytest.raises(TolError, match="does not exist"):
        read_inputs(None, tmp_path / "none.csv", tmp_path)


def _settings(collection: Path, url: str, tmp_path: Path) -> config.Config:
    return config.resolve({"database_url": url, "output_dir": str(tmp_path / "shards"),
                           "cache_dir": str(tmp_path / "cache"), "workers": 2}, {}, collection / "tol.toml")


def _keys_in_tars(folder: Path) -> list[str]:
    keys = []
    for shard in sorted(folder.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            keys += sorted({member.name.split(".", 1)[0] for member in tar.getmembers()})
    return keys


# ============================================================================================== database


def test_reproduce_writes_the_release_and_nothing_the_second_time(catalog_url, engine_of, release_collection: Path,
                                                                  tmp_path: Path):
    expected = _expected(release_collection)
    engine = engine_of(catalog_url)
    settings = _settings(release_collection, catalog_url, tmp_path)
    report = reproduce(settings, engine, release_collection / "release", samples_per_shard=40, quiet=True,
                       echo=lambda _: None)
    missing = set(expected["missing_images"])
    for split in ("train", "val", "train_small"):
        wanted = sorted(tol_id for tol_id, (where, small) in expected["splits"].items() if tol_id not in missing
                        and (where == split or (split == "train_small" and small)))
        keys = _keys_in_tars(tmp_path / "shards" / f"release-{split}")
        assert sorted(keys) == wanted, split  # every key, no other, each once
    assert report.mismatched_keys == 0 and report.unnamed == 0 and report.failed == 0
    assert report.missing == {"eol": len(missing)}
    assert report.members_not_in_map == 1  # the stray member named by an id the map lacks
    assert report.not_in_map and set(report.not_in_map) <= {"inat21", "bioscan"}  # the hostile files
    assert "common" in report.naming  # the fixture knows no vernaculars; ours does
    with engine.connect() as connection:
        stray = connection.execute(text("SELECT reason FROM ingest_rejects WHERE path LIKE :p"),
                                   {"p": f"%{expected['not_in_map']}.jpg"}).scalar_one()
        eol_ids = connection.execute(text(
            "SELECT COUNT(*) FROM images AS i JOIN release_ids AS r ON r.treeoflife_id = i.id "
            "AND r.eol_content_id = i.eol_content_id AND r.eol_page_id = i.eol_page_id "
            "WHERE i.source = 'eol'")).scalar_one()
    assert "does not hold" in stray
    assert eol_ids == sum(1 for tol_id in expected["splits"] if tol_id not in missing
                          and tol_id in _eol_ids(release_collection))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp_path / "shards").rglob("*") if p.is_file()}
    again = reproduce(settings, engine, release_collection / "release", samples_per_shard=40, quiet=True,
                      echo=lambda _: None)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp_path / "shards").rglob("*") if p.is_file()}
    assert again.shards_written == 0 and after == before
    assert again.lines()[1:] == report.lines()[1:]

    # Then as if two train images had failed and a val shard were not written yet: the failures are counted
    # (and are not mismatches), and every image of that val shard is a mismatch.
    with engine.begin() as connection:
        train_first = connection.execute(text(
            "SELECT m.shard_id, m.position, m.image_id FROM shard_members AS m JOIN shards AS sh "
            "ON sh.id = m.shard_id JOIN shard_plans AS p ON p.id = sh.plan_id "
            "WHERE p.name = 'release-train' AND sh.shard_index = 0 AND m.position < 2")).all()
        for shard_id, slot, image_id in train_first:
            connection.execute(text(
                "INSERT INTO image_errors (image_id, shard_id, stage, reason, planned_position) "
                "VALUES (:i, :s, 'write', 'cannot decode', :p)"), {"i": image_id, "s": shard_id, "p": slot})
        val_shard = connection.execute(text(
            "SELECT sh.id FROM shards AS sh JOIN shard_plans AS p ON p.id = sh.plan_id "
            "WHERE p.name = 'release-val' AND sh.shard_index = 0")).scalar_one()
        connection.execute(text("UPDATE shards SET state = 'pending' WHERE id = :s"), {"s": val_shard})
        in_val_shard = connection.execute(text("SELECT COUNT(*) FROM shard_members WHERE shard_id = :s"),
                                          {"s": val_shard}).scalar_one()
    tampered = ReproduceReport("release")
    _fill_report(engine, tampered, ReleaseFiles(None, None, None))
    assert len(train_first) == 2 and in_val_shard > 0
    assert tampered.failed == 2
    assert tampered.mismatched_keys == in_val_shard


def _eol_ids(collection: Path) -> set[str]:
    import sqlite3

    connection = sqlite3.connect(collection / "release" / "metadata" / "mapping.sqlite")
    ids = {row[0] for row in connection.execute("SELECT evobio10m_id FROM eol")}
    connection.close()
    return ids


def test_compare_agrees_on_ids_and_splits_and_strict_fails_on_a_moved_image(
        catalog_url, engine_of, release_collection: Path, tmp_path: Path):
    from etl import compare

    expected = _expected(release_collection)
    engine = engine_of(catalog_url)
    reproduce(_settings(release_collection, catalog_url, tmp_path), engine, release_collection / "release",
              samples_per_shard=40, quiet=True, echo=lambda _: None)
    published = release_collection / "release" / "metadata" / "catalog.csv"
    result = compare.compare(engine, "release-val", published)
    missing_val = sorted(t for t in expected["missing_images"] if expected["splits"][t][0] == "val")
    assert result.only_ours == [] and result.other_split == [] and result.only_published == []
    assert result.not_catalogued == missing_val
    assert result.both == result.written and result.unreadable_rows == 1  # the row naming no source
    for (column, _), agreement in result.columns.items():
        if column not in compare.NAME_COLUMNS:
            assert not agreement.differences, column
    assert result.undocumented() == 0
    # A published catalog that moves one written image to train, and changes one genus's case only.
    rows = list(csv.DictReader(published.open(encoding="utf-8")))
    written = {r.treeoflife_id for r in [compare.Difference(t, "", "") for t in _keys_in_tars(
        tmp_path / "shards" / "release-val")]}
    moved = next(r for r in rows if r["split"] == "val" and r["treeoflife_id"] in written)
    recased = next(r for r in rows if r["split"] == "val" and r["treeoflife_id"] in written and r is not moved
                   and r["genus"])
    moved["split"], recased["genus"] = "train", recased["genus"].upper()
    edited = tmp_path / "edited.csv"
    with edited.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows([r for r in rows if r["treeoflife_id"] not in expected["missing_images"]])
    result = compare.compare(engine, "release-val", edited)
    assert result.other_split == [(moved["treeoflife_id"], "train")] and result.undocumented() == 1
    assert [d.treeoflife_id for d in result.columns[("genus", _source_of(rows, recased))].differences["case only"]] \
        == [recased["treeoflife_id"]]
    run = subprocess.run([sys.executable, "-c", "from etl.cli import main; main()", "--database-url", catalog_url,
                          "catalog", "compare", "release-val", str(edited), "--strict"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 3, run.stderr
    assert "published in another split" in run.stdout and run.stderr.count("\n") == 1


def _source_of(rows: list[dict], row: dict) -> str:
    return "eol" if row["eol_page_id"] else "bioscan" if row["bioscan_filename"] else "inat21"


def test_import_gives_catalogued_images_their_ids_and_refuses_planned_ones(catalog_url, engine_of,
                                                                          release_collection: Path, tmp_path: Path):
    engine = engine_of(catalog_url)
    metadata = release_collection / "release" / "metadata"
    root = release_collection / "inat21" / "train"
    first = catalog.ingest(engine, "inat21", root, echo=lambda _: None)
    summary = importer.import_release(engine, "rel", metadata / "mapping.sqlite", None)
    (tmp_path / "read").mkdir()
    inputs = read_inputs(metadata / "mapping.sqlite", None, tmp_path / "read")
    entries = list(inputs.entries())
    inputs.close()
    inat = {e.treeoflife_id: (e.inat21_cls_num, e.inat21_filename) for e in entries if e.source == "inat21"}
    with engine.connect() as connection:
        ids = dict(connection.execute(text(
            "SELECT id, inat21_cls_num || '/' || inat21_filename FROM images WHERE source = 'inat21'")).all())
    assert summary.rekeyed == len(inat) and {k: f"{n}/{f}" for k, (n, f) in inat.items()}.items() <= ids.items()
    assert summary.rejected == 5 and summary.disagreements == 0
    again = catalog.ingest(engine, "inat21", root, echo=lambda _: None)
    assert (again.added, again.missing, again.unchanged) == (0, 0, first.listed)
    assert importer.import_release(engine, "rel", metadata / "mapping.sqlite", None).unchanged
    with pytest.raises(TolError, match="imported from other files"):
        importer.import_release(engine, "rel", None, metadata / "catalog.csv")
    # `tol splits` lists it with its counts; hash splits refuse its name.
    counts = splits.release_counts(engine, splits.get(engine, "rel").id)
    assert counts["train"] + counts["val"] == len(entries) and counts["catalogued"] == len(inat)
    with pytest.raises(TolError, match="release split"):
        splits.create(engine, "rel", 17)


def test_import_refuses_to_rename_planned_images(catalog_url, engine_of, release_collection: Path, tmp_path: Path):
    from etl import taxonomy
    from tests.helpers import reference_paths

    engine = engine_of(catalog_url)
    catalog.ingest(engine, "inat21", release_collection / "inat21" / "train", echo=lambda _: None)
    taxonomy.load(engine, reference_paths(release_collection))
    taxonomy.resolve(engine)
    splits.create(engine, "main", 17)
    create_plan(engine, "p", PlanOptions(split_name="main", split="train", out_dir=str(tmp_path / "p")))
    metadata = release_collection / "release" / "metadata"
    with pytest.raises(TolError, match=r"plan 'p' holds .* inat21 images"):
        importer.import_release(engine, "rel", metadata / "mapping.sqlite", metadata / "catalog.csv")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM release_ids")).scalar_one() == 0


def test_release_layout_needs_the_map_and_unsafe_mixing_is_refused(catalog_url, engine_of,
                                                                   release_collection: Path, tmp_path: Path):
    engine = engine_of(catalog_url)
    release_eol = release_collection / "release" / "dataset" / "EOL"
    summary = catalog.ingest(engine, "eol", release_eol, echo=lambda _: None)
    with engine.connect() as connection:
        reasons = connection.execute(text("SELECT DISTINCT reason FROM ingest_rejects WHERE run_id = :r"),
                                     {"r": summary.run_id}).scalars().all()
    assert summary.added == 0 and summary.rejected == summary.listed + summary.rejected > 0
    assert len(reasons) == 1 and "tol import-release" in reasons[0]
    importer.import_release(engine, "rel", release_collection / "release" / "metadata" / "mapping.sqlite", None)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for archive in [*release_eol.glob("*.tar.gz"), release_collection / "eol" / "media_cargo_archive" /
                    "media_0001.tar.gz"]:
        (mixed / archive.name).symlink_to(archive)
    with pytest.raises(TolError, match=r"mixes release-layout members .* media-cargo members the release map lacks"):
        catalog.ingest(engine, "eol", mixed, echo=lambda _: None)
    summary = catalog.ingest(engine, "eol", release_eol, echo=lambda _: None)
    assert summary.added == len(list(_members(release_eol))) - 1 and summary.rejected == 1


def _members(folder: Path):
    for archive in sorted(folder.glob("*.tar.gz")):
        with tarfile.open(archive) as tar:
            yield from tar.getnames()


def _tol(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from etl.cli import main; main()", "--database-url", url, *args],
                          capture_output=True, text=True, timeout=120)


def test_import_release_command_counts_rejects_and_splits_list_shows_it(catalog_url, release_collection: Path):
    expected = _expected(release_collection)
    metadata = release_collection / "release" / "metadata"
    nothing = _tol(catalog_url, "import-release")
    assert nothing.returncode == 2 and nothing.stderr.strip().splitlines() == [
        "Error: give --mapping, --catalog or both"]
    absent = _tol(catalog_url, "import-release", "--mapping", str(metadata / "absent.sqlite"))
    assert absent.returncode == 2 and "absent.sqlite does not exist" in absent.stderr
    done = _tol(catalog_url, "-q", "import-release", "--mapping", str(metadata / "mapping.sqlite"),
                "--catalog", str(metadata / "catalog.csv"), "--name", "published")
    assert done.returncode == 0, done.stderr
    assert f"rejected {len(expected['mapping_rejects']) + len(expected['catalog_rejects'])} rows" in done.stdout
    assert "disagree on 0 ids" in done.stdout
    listed = _tol(catalog_url, "splits", "list")
    n_val = sum(1 for where, _ in expected["splits"].values() if where == "val")
    n_small = sum(1 for _, small in expected["splits"].values() if small)
    assert (f"published\trelease\ttrain {len(expected['splits']) - n_val:,}\tval {n_val:,}\t"
            f"train_small {n_small:,}\t(0 catalogued)") in listed.stdout.splitlines()
    again = _tol(catalog_url, "import-release", "--mapping", str(metadata / "mapping.sqlite"),
                 "--catalog", str(metadata / "catalog.csv"), "--name", "published")
    assert again.returncode == 0 and "nothing changed" in again.stdout

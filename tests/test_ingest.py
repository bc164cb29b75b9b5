"""Ingest of the three sources from a generated sample collection, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from etl import catalog, ids, sources
from etl.errors import TolError
from etl.sources import bioscan, eol, inat21
from etl.sources.common import sniff
from tests.helpers import SOURCES, eol_unit_with_a_duplicate, ingest_all, metadata_of, roots


def expected_of(collection: Path) -> dict:
    return json.loads((collection / "expected.json").read_text())


def test_counts_rejects_and_hostile_files(catalog_url, engine_of, sample_collection: Path):
    engine = engine_of(catalog_url)
    summaries = ingest_all(engine, sample_collection)
    expected = expected_of(sample_collection)
    with engine.connect() as connection:
        counts = dict(connection.execute(text(
            "SELECT source, COUNT(*) FROM images WHERE status = 'present' GROUP BY source")).all())
        rejects = connection.execute(text("SELECT source, path, reason FROM ingest_rejects")).all()
        runs = connection.execute(text("SELECT source, status, n_added, n_rejected FROM ingest_runs")).all()
    assert counts == expected["catalogued"]
    for source in SOURCES:
        found = {(path, reason) for s, path, reason in rejects if s == source}
        for path, reason in expected["rejected"][source]:
            assert any(p == path and reason in r for p, r in found), f"{source}: no reject {path}: {reason}"
        assert len(found) == len(expected["rejected"][source]), sorted(found)
        assert summaries[source].added == expected["catalogued"][source]
    assert {(s, st) for s, st, *_ in runs} == {(s, "finished") for s in SOURCES}
    # The hostile files that are images are catalogued, the broken JPEG with a note.
    with engine.connect() as connection:
        suspects = dict(connection.execute(text(
            "SELECT COALESCE(member, path), suspect FROM images WHERE suspect IS NOT NULL")).all())
    truncated = [h.rsplit(":", 1)[0] for s in SOURCES for h in expected["hostile"][s] if h.endswith(":truncated")]
    for where in truncated:
        key = where.split(":", 1)[1] if ":" in where else where
        assert "truncated" in suspects[key]
    assert any("PNG data" in note for note in suspects.values())


def test_ids_are_stable_across_databases_and_runs(sample_collection: Path, empty_sqlite_url, empty_pg_url,
                                                  engine_of):
    from etl import schema

    results = []
    for url in (empty_sqlite_url, empty_pg_url):
        engine = engine_of(url)
        schema.upgrade(engine)
        ingest_all(engine, sample_collection, workers=1 if url.startswith("sqlite") else 2)
        with engine.connect() as connection:
            results.append(sorted(map(tuple, connection.execute(text(
                "SELECT id, source, eol_content_id, eol_page_id, inat21_cls_num, inat21_filename, "
                "bioscan_part, bioscan_filename, split_hash FROM images")).all())))
    assert results[0] == results[1]
    for image_id, source, content, page, cls_num, inat_file, part, bioscan_file, hashed in results[0]:
        if source == "eol":
            recomputed = ids.eol_image_id(content, page)
        elif source == "inat21":
            recomputed = ids.inat21_image_id(cls_num, inat_file)
        else:
            recomputed = ids.bioscan_image_id(part, bioscan_file)
        assert image_id == recomputed
        assert uuid.UUID(image_id).version == 5
        assert hashed == ids.split_hash(image_id)


def test_rerun_adds_nothing_then_tracks_added_and_removed(catalog_url, engine_of, sample_collection: Path,
                                                         tmp_path: Path):
    collection = tmp_path / "copy"
    shutil.copytree(sample_collection, collection)
    engine = engine_of(catalog_url)
    ingest_all(engine, collection)
    again = ingest_all(engine, collection)
    for source, summary in again.items():
        assert (summary.added, summary.changed, summary.missing) == (0, 0, 0), source
        assert summary.unchanged == summary.listed > 0
    with engine.connect() as connection:
        total = connection.execute(text("SELECT COUNT(*) FROM images")).scalar_one()
    assert total == sum(expected_of(collection)["catalogued"].values())

    class_dir = sorted((collection / "inat21" / "train").glob("00000_*"))[0]
    removed = sorted(class_dir.iterdir())[0]
    kept_bytes = removed.read_bytes()
    removed.unlink()
    new_file = class_dir / "0b0b0b0b-0000-4000-8000-000000000001.jpg"
    new_file.write_bytes(kept_bytes)
    third = catalog.ingest(engine, "inat21", roots(collection)["inat21"], echo=lambda _: None)
    assert (third.added, third.missing, third.changed) == (1, 1, 0)
    with engine.connect() as connection:
        status = connection.execute(text("SELECT status FROM images WHERE inat21_filename = :f"),
                                    {"f": removed.name}).scalar_one()
    assert status == "missing"
    removed.write_bytes(kept_bytes)
    fourth = catalog.ingest(engine, "inat21", roots(collection)["inat21"], echo=lambda _: None)
    assert (fourth.added, fourth.missing, fourth.changed) == (0, 0, 1)


def test_interrupted_ingest_leaves_catalog_unchanged(catalog_url, engine_of, sample_collection: Path,
                                                    monkeypatch):
    engine = engine_of(catalog_url)
    calls = {"n": 0}
    real_scan = eol.scan_unit

    def scan_then_interrupt(root, unit, check_images=True):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_scan(root, unit, check_images)

    monkeypatch.setattr(eol, "scan_unit", scan_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        catalog.ingest(engine, "eol", roots(sample_collection)["eol"], workers=1, echo=lambda _: None)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM images")).scalar_one() == 0
        assert connection.execute(text("SELECT COUNT(*) FROM ingest_rejects")).scalar_one() == 0
        assert connection.execute(text("SELECT status FROM ingest_runs")).scalar_one() == "interrupted"
    monkeypatch.setattr(eol, "scan_unit", real_scan)
    summary = catalog.ingest(engine, "eol", roots(sample_collection)["eol"], workers=1, echo=lambda _: None)
    assert summary.added == expected_of(sample_collection)["catalogued"]["eol"]


def test_killed_run_is_marked_interrupted_by_the_next(catalog_url, engine_of, sample_collection: Path):
    engine = engine_of(catalog_url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO ingest_runs (source, root, status) VALUES ('bioscan', '/x', 'running')"))
    catalog.ingest(engine, "bioscan", roots(sample_collection)["bioscan"], metadata=metadata_of(sample_collection),
                   echo=lambda _: None)
    with engine.connect() as connection:
        statuses = [row[0] for row in connection.execute(text("SELECT status FROM ingest_runs ORDER BY id"))]
    assert statuses == ["interrupted", "finished"]


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_bad_roots(catalog_url, engine_of, tmp_path: Path):
    engine = engine_of(catalog_url)
    with pytest.raises(TolError, match=r"root does not exist: .*nowhere"):
        catalog.ingest(engine, "inat21", tmp_path / "nowhere", echo=lambda _: None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TolError, match="no archives under eol root"):
        catalog.ingest(engine, "eol", tmp_path / "empty", echo=lambda _: None)
    with pytest.raises(TolError, match="no inat21 root given"):
        catalog.ingest(engine, "inat21", None, echo=lambda _: None)


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_bioscan_metadata_as_tsv(catalog_url, engine_of, sample_collection: Path, tmp_path: Path):
    records = [record for _, record in bioscan._json_array_objects(metadata_of(sample_collection))]
    tsv = tmp_path / "metadata.tsv"
    columns = list(records[0])
    tsv.write_text("\t".join(columns) + "\n" + "".join(
        "\t".join(str(r.get(c, "")) for c in columns) + "\n" for r in records))  # one record lacks image_file
    engine = engine_of(catalog_url)
    summary = catalog.ingest(engine, "bioscan", roots(sample_collection)["bioscan"], metadata=tsv,
                             echo=lambda _: None)
    assert summary.added == expected_of(sample_collection)["catalogued"]["bioscan"]


def test_json_array_reader_with_tiny_chunks(sample_collection: Path):
    whole = json.loads(metadata_of(sample_collection).read_text())
    streamed = [record for _, record in bioscan._json_array_objects(metadata_of(sample_collection), chunk_size=7)]
    assert streamed == whole


def test_json_array_reader_rejects_truncated(tmp_path: Path):
    path = tmp_path / "m.jsonld"
    path.write_text('[{"image_file": "a.jpg"}, {"image_file": "b.j')
    with pytest.raises(TolError, match=r"m\.jsonld: record 2 is not valid JSON"):
        list(bioscan.read_metadata(path))


@pytest.mark.parametrize(("name", "expected"), [
    ("00000_Animalia_Annelida_Clitellata_Haplotaxida_Lumbricidae_Lumbricus_terrestris",
     (0, "Animalia_Annelida_Clitellata_Haplotaxida_Lumbricidae_Lumbricus_terrestris")),
    ("04815_Animalia_Chordata_Aves_Passeriformes_Paridae_Cyanistes_caeruleus", (4815, None)),
    ("0481_Animalia_Chordata_Aves_Passeriformes_Paridae_Cyanistes_caeruleus", "5-digit index"),
    ("04815_Animalia_Chordata_Aves_Passeriformes_Paridae_Cyanistes", "6 non-index parts"),
    ("04815_Animalia_Chordata_Aves_Passeriformes_Paridae_Cyanistes_caeruleus_x", "8 non-index parts"),
    ("04815_Animalia__Aves_Passeriformes_Paridae_Cyanistes_caeruleus", "expected 7 ranks"),
])
def test_parse_class_folder(name, expected):
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected):
            inat21.parse_class_folder(name)
        return
    parsed = inat21.parse_class_folder(name)
    assert parsed.cls_num == expected[0]
    if expected[1]:
        assert parsed.cls_name == expected[1]


@pytest.mark.parametrize(("name", "expected"), [
    ("12784812_51655800_eol-full-size-copy.jpg", (12784812, 51655800)),
    ("10431575_49672921_eol_full-size-copy.jpg", (10431575, 49672921)),
    ("sub/dir/10431575_49672921_eol-full-size-copy.jpg", (10431575, 49672921)),
    ("0f3c1b2e-9d4a-4b1e-8c3d-5a6b7c8d9e0f.jpg", ("0f3c1b2e-9d4a-4b1e-8c3d-5a6b7c8d9e0f",)),
    ("0F3C1B2E-9D4A-4B1E-8C3D-5A6B7C8D9E0F.jpg", "is not <content_id>"),
    ("x12784812_51655800_eol-full-size-copy.jpg", "is not <content_id>"),
    ("12784812_eol-full-size-copy.jpg", "is not <content_id>"),
])
def test_parse_eol_member(name, expected):
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected):
            eol.parse_member(name)
    elif len(expected) == 1:  # the release layout: the member is named by its treeoflife_id
        assert eol.parse_member(name) == expected[0]
    else:
        assert eol.parse_member(name) == expected


@pytest.mark.parametrize(("head", "tail", "size", "fatal", "suspect"), [
    (b"", b"", 0, "empty file", None),
    (b"\xff\xd8\xff\xe0", b"\x00\xff\xd9", 10, None, None),
    (b"\xff\xd8\xff\xe0", b"\xff\xd9\n", 10, None, None),
    (b"\xff\xd8\xff\xe0", b"\x12\x34", 10, None, "truncated"),
    (b"\x89PNG\r\n\x1a\n", b"", 10, None, "PNG data"),
    (b"<html>", b"</html>", 10, "not an image", None),
])
def test_sniff(head, tail, size, fatal, suspect):
    got_fatal, got_suspect = sniff(head, tail, size)
    assert (fatal is None) == (got_fatal is None) and (fatal is None or fatal in got_fatal)
    assert (suspect is None) == (got_suspect is None) and (suspect is None or suspect in got_suspect)


def test_first_ingest_with_a_duplicate_identity_falls_back_and_reports_it(catalog_url, engine_of):
    from etl.sources.common import UnitResult, make_row

    def listing():
        unit = UnitResult()
        for n in (1, 2, 2, 3):  # content 2 of page 7 listed twice (two archives holding the same member)
            unit.rows.append(make_row(ids.eol_image_id(n, 7), f"a{len(unit.rows)}.tar.gz", 10,
                                      member=f"{n}_7_eol-full-size-copy.jpg", member_offset=512,
                                      eol_content_id=n, eol_page_id=7))
        return [unit]

    engine = engine_of(catalog_url)
    summary = catalog.load_listing(engine, "eol", "/x", listing)
    assert (summary.listed, summary.added, summary.rejected) == (3, 3, 1)
    assert "duplicate" in summary.reject_examples[0].reason and summary.reject_examples[0].path.startswith("a2")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM images")).scalar_one() == 3


@pytest.mark.parametrize("units", [6, 40])
def test_parallel_first_ingest_with_a_duplicate_falls_back_keeping_every_reject(catalog_url, engine_of, units):
    """Two listing processes (on SQLite through scratch files, in several phases when there are enough
    units): a duplicate found while copying rolls the direct load back and the staging path reports it."""
    engine = engine_of(catalog_url)
    summary = catalog.load_listing(engine, "eol", "/x", catalog.Listing(
        eol_unit_with_a_duplicate, list(range(units)), workers=2, fields=eol.FIELDS))
    assert (summary.listed, summary.added, summary.rejected) == (3 * (units - 1), 3 * (units - 1), units + 1)
    with engine.connect() as connection:
        rejects = [row[0] for row in connection.execute(text(
            "SELECT reason FROM ingest_rejects WHERE run_id = :r ORDER BY id"), {"r": summary.run_id})]
        kept = connection.execute(text(
            "SELECT path FROM images WHERE eol_content_id = 2 AND eol_page_id = 7")).scalar_one()
        assert connection.execute(text("SELECT COUNT(*) FROM images")).scalar_one() == 3 * (units - 1)
    assert sum("duplicate" in reason for reason in rejects) == 1 and len(rejects) == units + 1
    assert kept == "a0.tar.gz"  # the first listed wins, whichever process listed it


@pytest.mark.parametrize("source", SOURCES)
def test_sources_fill_only_their_declared_fields(sample_collection: Path, source: str):
    """Scratch files carry a source's FIELDS only, so any other field a scan fills would be lost."""
    from etl.sources.common import STAGE_COLUMNS

    module = sources.by_name(source)
    units, _ = module.list_units(roots(sample_collection)[source])
    undeclared = [i for i, name in enumerate(STAGE_COLUMNS) if name not in module.FIELDS]
    rows = [row for unit in units for row in module.scan_unit(str(roots(sample_collection)[source]), unit).rows]
    assert rows and set(module.FIELDS) <= set(STAGE_COLUMNS)
    assert all(row[i] is None for row in rows for i in undeclared)
    # A release-layout EOL member (`<treeoflife_id>.jpg`) gets its content and page ids from the release map
    # when the listing is merged, so its scan leaves them empty.
    release_layout = {n for n, row in enumerate(rows)
                      if source == "eol" and row[2].endswith("-" + row[0][-12:] + ".jpg")}
    assert all(row[STAGE_COLUMNS.index(name)] is not None for n, row in enumerate(rows) for name in module.FIELDS
               if name != "suspect" and not (n in release_layout and name.startswith("eol_")))
    assert len(release_layout) == (1 if source == "eol" else 0)


@pytest.mark.parametrize("name", ["eol/1/2", "inat21/0/00000000-0000-4000-8000-000000000000.jpg",
                                  "bioscan/113/Ω-ünïcode.jpg", "", "x" * 500]
                         + [f"inat21/{n}/{n:08x}.jpg" for n in range(0, 4096, 7)])
def test_fast_uuid5_equals_the_standard_library(name: str):
    assert ids.uuid5_text(name) == str(uuid.uuid5(ids.PROJECT_NAMESPACE, name))


def test_sample_names_stay_unique_for_large_collections():
    """A 300k-image collection needs ~20k species: more genus names than two syllables can make."""
    import random

    from etl.sampledata import synthetic_species

    species = synthetic_species(random.Random(1), 20_000)
    assert len(species) == 20_000
    families = {item.ranks[4] for item in species}
    genera = {item.ranks[5] for item in species}
    assert len(genera) > 1200 and len(families) > 1000


@pytest.mark.parametrize("units, workers, sizes", [
    (1, 2, [1]),
    (2, 2, [1, 1]),
    (6, 2, [1, 2, 2, 1]),
    (100, 2, [10, 40, 40, 10]),
    (100, 3, [50, 50]),
    (100, 8, [100]),
    (100, 20, [100]),
])
def test_listing_phases_are_ordered_with_short_ends(units: int, workers: int, sizes: list[int]):
    from collections import Counter

    from etl.spill import MAX_FILES, phase_of_units

    phases = phase_of_units(units, workers)
    assert phases == sorted(phases) and len(phases) == units
    assert [Counter(phases)[p] for p in range(len(sizes))] == sizes
    assert len(sizes) * min(workers, MAX_FILES) <= MAX_FILES  # every phase's files can be attached at once

"""Splits as a pure function of seed and stable id, identical on both databases; exclusions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from etl import catalog, exclusions, schema, splits
from etl.errors import TolError
from etl.ids import bioscan_image_id, eol_image_id, inat21_image_id, split_hash
from etl.sources.common import UnitResult, make_row
from tests.helpers import ingest_all, roots


def split_rows(engine, name: str) -> dict[str, tuple[str, int]]:
    with engine.connect() as connection:
        return {image: (split, small) for image, split, small in connection.execute(text(
            "SELECT image_id, split, in_train_small FROM image_splits WHERE split_name = :n"), {"n": name})}


def synthetic_listing(source: str, start: int, count: int) -> UnitResult:
    """`count` synthetic images of `source`, numbered from `start`."""
    unit = UnitResult()
    for n in range(start, start + count):
        if source == "eol":
            row = make_row(eol_image_id(n, n % 9973), "a.tar.gz", 1, member=f"{n}_{n % 9973}_eol-full-size-copy.jpg",
                           member_offset=512, eol_content_id=n, eol_page_id=n % 9973)
        elif source == "inat21":
            name = f"{n:08x}-0000-4000-8000-000000000000.jpg"
            row = make_row(inat21_image_id(n % 1000, name), f"c/{name}", 1, inat21_filename=name,
                           inat21_cls_name="A_B_C_D_E_F_g", inat21_cls_num=n % 1000)
        else:
            row = make_row(bioscan_image_id(1 + n % 113, f"{n}.jpg"), f"part/{n}.jpg", 1,
                           bioscan_part=1 + n % 113, bioscan_filename=f"{n}.jpg")
        unit.rows.append(row)
    return unit


@pytest.mark.parametrize(("seed", "val", "small"), [(17, 5, 10), (0, 5, 5), (-3, 12.5, 0), (2**62, 0, 100)])
def test_parameters_keep_arithmetic_in_64_bits(seed, val, small):
    params = splits.parameters(seed, val, small)
    assert params.multiplier % 2 == 1 and params.multiplier < 2**31 and params.increment < 2**31
    assert (2**31 - 1) * params.multiplier + params.increment < 2**63
    assert 0 <= params.val_threshold <= params.train_small_threshold <= 2**31


def test_python_rule_fractions_and_seed_independence():
    hashes = [split_hash(inat21_image_id(n, "x.jpg")) for n in range(100_000)]
    first = splits.parameters(17, 5, 10)
    second = splits.parameters(18, 5, 10)
    val_first = {h for h in hashes if splits.split_of(h, first)[0] == "val"}
    val_second = {h for h in hashes if splits.split_of(h, second)[0] == "val"}
    assert abs(len(val_first) / len(hashes) - 0.05) < 0.003
    # Another seed draws another validation set (independent draws overlap by about 5 % of 5 %).
    assert len(val_first & val_second) < 0.15 * len(val_first)
    small = [h for h in hashes if splits.split_of(h, first)[1]]
    assert abs(len(small) / (len(hashes) - len(val_first)) - 0.10) < 0.005


@pytest.mark.parametrize(("args", "message"), [
    (("bad name!", 1, 5, 5), "must be 1-64 letters"),
    (("ok", 1, 150, 5), "--val-percent must be between 0 and 100"),
    (("ok", 1, 5, -1), "--train-small-percent must be between 0 and 100"),
])
def test_create_rejects_bad_options(catalog_url, engine_of, args, message):
    with pytest.raises(TolError, match=message):
        splits.create(engine_of(catalog_url), *args)


def test_definitions_are_immutable(catalog_url, engine_of):
    engine = engine_of(catalog_url)
    assert splits.create(engine, "v1", 17, 5, 10)[1] is True
    assert splits.create(engine, "v1", 17, 5, 10)[1] is False
    with pytest.raises(TolError, match="definitions never change"):
        splits.create(engine, "v1", 18, 5, 10)
    assert [d.name for d in splits.list_definitions(engine)] == ["v1"]


def test_view_matches_rule_and_databases_agree(sample_collection: Path, empty_sqlite_url, empty_pg_url,
                                               engine_of):
    results = []
    for url in (empty_sqlite_url, empty_pg_url):
        engine = engine_of(url)
        schema.upgrade(engine)
        ingest_all(engine, sample_collection)
        splits.create(engine, "s17", 17, 5, 10)
        results.append(split_rows(engine, "s17"))
        params = splits.parameters(17, 5, 10)
        with engine.connect() as connection:
            hashes = dict(connection.execute(text("SELECT id, split_hash FROM images")).all())
        for image_id, (split, small) in results[-1].items():
            assert splits.split_of(hashes[image_id], params) == (split, bool(small))
    assert results[0] == results[1]
    assert any(split == "val" for split, _ in results[0].values())


def test_same_split_after_reingest_in_another_order(sample_collection: Path, catalog_url, empty_sqlite_url,
                                                    engine_of):
    first = engine_of(catalog_url)
    ingest_all(first, sample_collection)
    splits.create(first, "main", 17)
    second = engine_of(empty_sqlite_url)
    schema.upgrade(second)
    for source in ("bioscan", "eol", "inat21"):
        catalog.ingest(second, source, roots(sample_collection)[source], workers=1, echo=lambda _: None,
                       metadata=sample_collection / "bioscan" / "BIOSCAN_Insect_Dataset_metadata.jsonld")
    splits.create(second, "main", 17)
    assert split_rows(first, "main") == split_rows(second, "main")


def test_fractions_per_source_and_stability_under_additions(catalog_url, engine_of):
    engine = engine_of(catalog_url)
    per_source = 200_000 // 3
    for source in ("eol", "inat21", "bioscan"):
        catalog.load_listing(engine, source, "synthetic",
                             lambda source=source: [synthetic_listing(source, 0, per_source)])
    splits.create(engine, "v", 17, 5, 10)
    with engine.connect() as connection:
        shares = connection.execute(text("""
            SELECT source, AVG(CASE WHEN split = 'val' THEN 1.0 ELSE 0.0 END),
                   SUM(in_train_small) * 1.0 / SUM(CASE WHEN split = 'train' THEN 1 ELSE 0 END), COUNT(*)
            FROM image_splits WHERE split_name = 'v' GROUP BY source""")).all()
    assert len(shares) == 3
    for source, val_share, small_share, count in shares:
        assert count == per_source
        assert abs(float(val_share) - 0.05) < 0.002, source
        assert abs(float(small_share) - 0.10) < 0.004, source
    before = split_rows(engine, "v")
    assert abs(sum(s == "val" for s, _ in before.values()) / len(before) - 0.05) < 0.002
    # 10 % more images: nothing moves.
    for source in ("eol", "inat21", "bioscan"):
        catalog.load_listing(engine, source, "synthetic",
                             lambda source=source: [synthetic_listing(source, 0, per_source + per_source // 10)])
    after = split_rows(engine, "v")
    assert len(after) == len(before) + 3 * (per_source // 10)
    assert all(after[image] == assignment for image, assignment in before.items())


# ------------------------------------------------------------------------------------------------ exclusions


def _write_lists(folder: Path, seen: dict, unseen: dict) -> tuple[Path, Path]:
    seen_path, unseen_path = folder / "seen.json", folder / "unseen.json"
    seen_path.write_text(json.dumps(seen))
    unseen_path.write_text(json.dumps(unseen))
    return seen_path, unseen_path


def test_exclusions_by_file_name_and_by_species(catalog_url, engine_of, tmp_path: Path):
    engine = engine_of(catalog_url)
    catalog.load_listing(engine, "eol", "synthetic", lambda: [synthetic_listing("eol", 100, 50)])
    catalog.load_listing(engine, "inat21", "synthetic", lambda: [synthetic_listing("inat21", 100, 50)])
    # Two taxa: the rare one (given to 3 EOL images and 2 iNat21 images) and another.
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO taxa (id, kingdom, phylum, class, \"order\", family, genus, species) "
                                "VALUES (1, 'animalia', 'chordata', 'reptilia', 'squamata', 'boidae', 'charina', "
                                "'umbratica'), (2, 'plantae', 'p', 'c', 'o', 'f', 'quercus', 'novae-angliae')"))
        eol_ids = [r[0] for r in connection.execute(text(
            "SELECT id FROM images WHERE source = 'eol' ORDER BY eol_content_id LIMIT 3"))]
        inat_ids = [r[0] for r in connection.execute(text(
            "SELECT id FROM images WHERE source = 'inat21' ORDER BY inat21_filename LIMIT 2"))]
        for image_id in eol_ids + inat_ids:
            connection.execute(text("UPDATE images SET taxon_id = 1 WHERE id = :i"), {"i": image_id})
        connection.execute(text("UPDATE images SET taxon_id = 2 WHERE source = 'eol' AND eol_content_id = 140"))
    seen, unseen = _write_lists(tmp_path, {
        "Mobula birostris": ["/data/rare/120_120_eol-full-size-copy.jpg", "/data/rare/1_EOL-media-269-1.jpg"],
    }, {
        # Messy forms: HTML around the genus, upper-case epithet, a hyphenated epithet.
        "Animalia-Chordata-Reptilia-Squamata-Boidae-<i>Charina</i>-UMBRATICA": [
            "/data/rare/101_101_eol-full-size-copy.jpg"],
        "Plantae-P-C-O-F-Quercus-novae-angliae": [],
    })
    assert exclusions.load_rare_species(engine, seen, unseen)[:2] == (3, 2)
    with engine.connect() as connection:
        excluded = {row[0]: row[1] for row in connection.execute(text(
            "SELECT image_id, MIN(kind) FROM image_exclusions GROUP BY image_id"))}
        content_120 = connection.execute(text("SELECT id FROM images WHERE eol_content_id = 120")).scalar_one()
        content_140 = connection.execute(text("SELECT id FROM images WHERE eol_content_id = 140")).scalar_one()
    assert set(excluded) == {content_120, content_140, *eol_ids, *inat_ids}
    assert excluded[content_120] == "image" and excluded[inat_ids[0]] == "species"
    result = exclusions.report(engine)
    assert [entry for _, entry in result.unmatched] == ["/data/rare/1_EOL-media-269-1.jpg"]
    assert result.excluded_images == 7 and result.planned_excluded == 0
    # Re-loading replaces the lists rather than adding to them.
    assert exclusions.load_rare_species(engine, seen, unseen)[:2] == (3, 2)
    assert exclusions.report(engine).excluded_images == 7


@pytest.mark.parametrize(("content", "message"), [
    ("[1, 2]", "expected an object"),
    ("{", "not valid JSON"),
    (b'{"\xff": []}', "not UTF-8"),
    # More than 10 bad records and more than 5 %: the list fails whole, naming its first bad record.
    ('{' + ", ".join(f'"A-b{n}": []' for n in range(12)) + '}', "12 of 12 rows malformed.*line 1: key is not seven"),
])
def test_rare_species_list_failing_whole(tmp_path: Path, content, message):
    seen = tmp_path / "seen.json"
    seen.write_text("{}")
    unseen = tmp_path / "unseen.json"
    unseen.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TolError, match=message):
        exclusions.rare_species_rows(seen, unseen)


# One malformed record each: (list, file content, expected (record number, reason)) — the rest still loads.
BAD_RECORDS = [
    ("seen", {"Mobula birostris": ["a/1.jpg", 7, "a/2.jpg"]}, (3, "entry is not an image path")),
    ("seen", {"Mobula birostris": ["a/1.jpg", "  "]}, (3, "entry is not an image path")),
    ("seen", {"Mobula birostris": "a/1.jpg"}, (1, "value is not a list of image paths")),
    ("unseen", {"A-b": ["x.jpg"]}, (1, "key is not seven ranks joined by '-'")),
    ("unseen", {"Animalia------": []}, (1, "key names no genus and epithet")),
    ("unseen", {"Animalia-C-R-S-B-not provided-": ["y.jpg"]}, (1, "key names no genus and epithet")),
]


@pytest.mark.parametrize(("which", "content", "expected"), BAD_RECORDS)
def test_rare_species_bad_record_is_rejected_alone(tmp_path: Path, which, content, expected):
    good_seen = {"Mobula alfredi": ["r/1.jpg"]}
    good_unseen = {"Animalia-Chordata-Reptilia-Squamata-Boidae-Charina-umbratica": ["r/2.jpg"]}
    seen, unseen = _write_lists(tmp_path, {**good_seen, **content} if which == "seen" else good_seen,
                                {**good_unseen, **content} if which == "unseen" else good_unseen)
    rows, rejects = exclusions.rare_species_rows(seen, unseen)
    list_name = exclusions.SEEN_LIST if which == "seen" else exclusions.UNSEEN_LIST
    offset = 2  # the good key and its one entry come first in each list
    assert [(r.line_no, r.reason) for r in rejects[list_name]] == [(expected[0] + offset, expected[1])]
    entries = {(r["kind"], r["entry"]) for r in rows}
    assert ("image", "r/1.jpg") in entries and ("image", "r/2.jpg") in entries
    assert ("species", "Animalia-Chordata-Reptilia-Squamata-Boidae-Charina-umbratica") in entries
    good_entries_in_bad_record = {e for v in content.values() if isinstance(v, list) for e in v
                                  if isinstance(e, str) and e.strip()}
    if which == "seen":
        assert good_entries_in_bad_record <= {e for _, e in entries}


def test_rare_species_rejects_recorded(catalog_url, engine_of, tmp_path: Path):
    engine = engine_of(catalog_url)
    seen, unseen = _write_lists(tmp_path, {"Mobula alfredi": ["r/1.jpg", None]},
                                {"A-b": ["x.jpg"], "Animalia-Chordata-Reptilia-Squamata-Boidae-Charina-umbratica": []})
    loaded = exclusions.load_rare_species(engine, seen, unseen)
    assert loaded == (1, 1, {"rare-species-seen": {"entry is not an image path": 1},
                             "rare-species-unseen": {"key is not seven ranks joined by '-'": 1}})
    assert "rare-species-unseen: 1 records rejected (see ref_rejects)" in loaded.lines()
    with engine.connect() as connection:
        recorded = connection.execute(text(
            "SELECT resource, line_no, reason, raw FROM ref_rejects ORDER BY resource")).all()
    assert [tuple(r) for r in recorded] == [
        ("rare-species-seen", 3, "entry is not an image path", '{"Mobula alfredi": null}'),
        ("rare-species-unseen", 1, "key is not seven ranks joined by '-'", '{"A-b": ["x.jpg"]}')]
    # Loading clean lists again clears the rejects.
    seen.write_text('{"Mobula alfredi": ["r/1.jpg"]}')
    unseen.write_text("{}")
    assert exclusions.load_rare_species(engine, seen, unseen) == (1, 0, {})
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM ref_rejects")).scalar_one() == 0


def test_rare_species_rows_of_sample(sample_collection: Path):
    rows, rejects = exclusions.rare_species_rows(sample_collection / "rarespecies" / "seen_in_training.json",
                                                 sample_collection / "rarespecies" / "unseen_in_training.json")
    species = [(r["genus"], r["species"]) for r in rows if r["kind"] == "species"]
    assert ("charina", "umbratica") in species
    # The generator's messes: one malformed record in each list, rejected alone.
    assert {name: [r.reason for r in found] for name, found in rejects.items()} == {
        "rare-species-seen": ["entry is not an image path"],
        "rare-species-unseen": ["key is not seven ranks joined by '-'"]}

"""Provenance: license names normalised by table, the real files' layouts read (EOL media manifests with and
without headers, iNat21's train.json streamed), every image of the sample collection given the license the
generator wrote for it (expected.json) or listed as unknown, plans that allow only some licenses, the
`json` member and licenses.csv — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from etl import provenance
from etl.errors import TolError
from etl.sources.common import RowReject
from etl.sources.eol_manifest import manifest_files, read_manifest
from etl.sources.inat21_annotations import read_annotations, stream_array
from etl.sources.licensing import ProvenanceRecord
from etl.write.launch import write_plan
from tests.helpers import TOL, make_plan, prepared_catalog, tol_env, write_options

# ------------------------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(("name", "link", "key"), [
    ("cc-by-nc-sa-3.0", "", "cc-by-nc-sa"),
    ("cc-by-3.0", "", "cc-by"),
    ("CC BY 4.0", "", "cc-by"),
    ("CC BY-NC", "", "cc-by-nc"),
    ("cc-by-sa-2.5", "", "cc-by-sa"),
    ("CC BY-ND 4.0", "", "cc-by-nd"),
    ("CC-BY-NC-ND", "", "cc-by-nc-nd"),
    ("Attribution-NonCommercial-ShareAlike 2.0 Generic", "", "cc-by-nc-sa"),
    ("Creative Commons Attribution-ShareAlike 4.0 International", "", "cc-by-sa"),
    ("Attribution-NoDerivs License", "", "cc-by-nd"),
    ("cc0-1.0", "", "cc0"),
    ("CC0 1.0", "", "cc0"),
    ("public domain", "", "pd"),
    ("cc-publicdomain", "", "pd"),
    ("Public Domain Mark 1.0", "", "pd"),
    ("No known copyright restrictions", "", "pd"),
    ("All rights reserved", "", "all-rights-reserved"),
    ("", "http://creativecommons.org/licenses/by-nc/4.0/", "cc-by-nc"),
    ("", "https://creativecommons.org/publicdomain/zero/1.0/", "cc0"),
    ("", "https://creativecommons.org/publicdomain/mark/1.0/", "pd"),
    ("CC BY-NC 4.0", "http://creativecommons.org/licenses/by-nc/4.0/", "cc-by-nc"),
    # Unknown, never guessed: blank, free text, contradictions, a name against its link, a link to elsewhere.
    ("", "", None),
    ("   ", "", None),
    ("see source", "", None),
    ("not provided", "", None),
    ("CC BY-SA-ND", "", None),
    ("Photo by Jane Doe", "", None),
    ("license id 9 (not in licenses[])", "", None),
    ("CC BY 4.0", "http://creativecommons.org/licenses/by-sa/4.0/", None),
    ("", "https://example.org/terms", None),
])
def test_license_key(name, link, key):
    assert provenance.license_key(name, link) == key


@pytest.mark.parametrize(("value", "keys"), [
    ("cc-by,cc-by-sa,cc0", ("cc0", "cc-by", "cc-by-sa")),
    (" CC BY , public domain ", ("pd", "cc-by")),
    ("cc-by-nc-sa,cc-by-nc-sa", ("cc-by-nc-sa",)),
])
def test_parse_allowed(value, keys):
    assert provenance.parse_allowed(value) == keys


@pytest.mark.parametrize(("value", "message"), [("cc-by,see source", "'see source' is not a license"),
                                                 (" , ", "names no license"), ("unknown", "'unknown'")])
def test_parse_allowed_refuses_what_is_no_license(value, message):
    with pytest.raises(TolError, match=message):
        provenance.parse_allowed(value)


# ------------------------------------------------------------------------------------------ the readers


def records(items) -> tuple[list[ProvenanceRecord], list[RowReject]]:
    items = list(items)
    return [i for i in items if isinstance(i, ProvenanceRecord)], [i for i in items if isinstance(i, RowReject)]


def test_manifest_files_are_read_in_number_order_and_a_later_file_continues_the_header(tmp_path: Path):
    folder = tmp_path / "media_manifest"
    folder.mkdir()
    # The real layout: six columns, a header in the first file only; a later release names more columns, in
    # another order, and spells them differently.
    (folder / "media_manifest_1.csv").write_text(
        "EOL content ID,EOL page ID,Medium Source URL,EOL Full-Size Copy URL,License Name,Copyright Owner\n"
        "11,101,https://a/11,https://eol/11.jpg,cc-by-3.0,Ann\n", encoding="utf-8")
    (folder / "media_manifest_2.csv").write_text("12,102,https://a/12,https://eol/12.jpg,,\n"
                                                  "x3,103,,,cc-by-3.0,typo\n", encoding="utf-8")
    (folder / "media_manifest_10.csv").write_text(
        "\ufeffTitle,md5,EOL Content Id,eol_page_id,license_link,License Name,copyright owner,source url,"
        "EOL Full-size Copy URL\n"
        '"A ""quoted"", title",abc123,13,103,https://creativecommons.org/licenses/by/4.0/,CC BY 4.0,Bo,'
        "https://a/13,https://eol/13.jpg\n"
        "too,few,fields\n", encoding="utf-8")
    (folder / "notes.txt").write_text("not a manifest\n")
    assert [p.name for p in manifest_files(folder)] == ["media_manifest_1.csv", "media_manifest_2.csv",
                                                        "media_manifest_10.csv"]
    found, rejects = records(read_manifest(folder))
    assert found == [
        ProvenanceRecord((11,), "cc-by-3.0", "", "Ann", "https://a/11", "https://eol/11.jpg", "", ""),
        ProvenanceRecord((12,), "", "", "", "https://a/12", "https://eol/12.jpg", "", ""),
        ProvenanceRecord((13,), "CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/", "Bo", "https://a/13",
                         "https://eol/13.jpg", 'A "quoted", title', "abc123"),
    ]
    assert [(r.line_no, r.reason) for r in rejects] == [(3, "content id is not a whole number"),
                                                       (5, "expected 9 fields")]
    assert rejects[0].raw.startswith("media_manifest_2.csv: x3,103")


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_stream_array_gives_what_json_load_gives(chunk: int):
    rng = random.Random(chunk)
    items = [{"id": n, "file_name": f"train/{n:05d}_A_b/é{n}.jpg", "nested": {"x": [rng.random(), "]", "\\"]},
              "rights_holder": rng.choice(["", None, "Zoë \"Z\"", "a, b"])} for n in range(40)]
    document = json.dumps({"info": {"images": "not this"}, "images": items, "licenses": [{"id": 1}]}, indent=1)
    assert list(stream_array(io.StringIO(document), "images", chunk)) == json.loads(document)["images"]
    assert list(stream_array(io.StringIO(document), "licenses", chunk)) == [{"id": 1}]
    assert list(stream_array(io.StringIO(document), "annotations", chunk)) == []
    with pytest.raises(ValueError):
        list(stream_array(io.StringIO('{"images": [{"id": 1},'), "images", chunk))


def test_annotations_name_the_license_by_id_and_key_the_image_by_class_and_file(tmp_path: Path):
    document = {"images": [
        {"id": 1, "file_name": "train/00012_Animalia_X_Y_Z_W_V_U_t/aa.jpg", "license": 2, "rights_holder": "Kim"},
        {"id": 2, "file_name": "train/00013_Plantae_X_Y_Z_W_V_U_t/bb.jpg", "license": 7, "rights_holder": None},
        {"id": 3, "file_name": "00014_Fungi_X_Y_Z_W_V_U_t/cc.jpg", "license": "CC0", "rights_holder": ""},
        {"id": 4, "file_name": "train/loose.jpg", "license": 2},
    ], "licenses": [{"id": 2, "name": "CC BY-NC 4.0", "url": "http://creativecommons.org/licenses/by-nc/4.0/"}]}
    (tmp_path / "train.json").write_text(json.dumps(document))
    found, rejects = records(read_annotations(tmp_path))
    assert found == [
        ProvenanceRecord((12, "aa.jpg"), "CC BY-NC 4.0", "http://creativecommons.org/licenses/by-nc/4.0/", "Kim"),
        ProvenanceRecord((13, "bb.jpg"), "license id 7 (not in licenses[])", "", ""),
        ProvenanceRecord((14, "cc.jpg"), "CC0", "", ""),
    ]
    assert [(r.line_no, r.reason) for r in rejects] == [(4, "file_name is not train/<class folder>/<uuid>.jpg")]


# --------------------------------------------------------------------------------------- the catalog


def expected_keys(collection: Path) -> dict[str, dict[str, str]]:
    return json.loads((collection / "expected.json").read_text())["licenses"]


def provenance_paths(collection: Path) -> dict[str, Path | None]:
    return {"eol_media_manifest": collection / "eol" / "media_manifest",
            "inat21_annotations": collection / "inat21" / "train.json"}


def catalog_keys(engine) -> dict[str, tuple[str, str, str | None, str | None]]:
    """image id → (source, the generator's name for it, license key, unknown reason)."""
    with engine.connect() as connection:
        return {row[0]: tuple(row[1:]) for row in connection.execute(text("""
            SELECT l.image_id, l.source,
                   CASE l.source WHEN 'eol' THEN i.member
                                 WHEN 'inat21' THEN i.inat21_cls_num || '/' || i.inat21_filename
                                 ELSE '*' END,
                   l.license_key, l.unknown_reason
            FROM image_licenses AS l JOIN images AS i ON i.id = l.image_id WHERE i.status = 'present'"""))}


def generator_key(expected: dict[str, dict[str, str]], source: str, name: str) -> str:
    if source == "inat21":  # the generator names iNat21 images by class folder; the catalog by class number
        by_number = {f"{int(k.split('_', 1)[0])}/{k.split('/')[1]}": v for k, v in expected["inat21"].items()}
        return by_number.get(name, "unknown")
    return expected[source].get(name, "unknown")


@pytest.fixture
def prepared(catalog_url, engine_of, sample_collection: Path):
    engine = engine_of(catalog_url)
    prepared_catalog(engine, sample_collection)
    return catalog_url, engine


def test_every_image_gets_the_license_its_file_gives_or_is_listed_as_unknown(prepared, sample_collection: Path,
                                                                            tmp_path: Path):
    _, engine = prepared
    results = {r.source: r for r in provenance.load(engine, provenance_paths(sample_collection))}
    expected = expected_keys(sample_collection)
    keys = catalog_keys(engine)
    mismatched = {image: (source, name, key) for image, (source, name, key, _) in keys.items()
                  if (key or "unknown") != generator_key(expected, source, name)}
    assert mismatched == {}
    # The hostile and cut archives' images have no manifest row: unknown for that reason, as are blank and
    # unreadable licenses (counted, and listed by `unknown`).
    reasons = Counter(reason for (_, _, key, reason) in keys.values() if key is None)
    assert set(reasons) == {"no provenance record", "license not given", "license not recognised"}
    listed = list(provenance.unknown(engine))
    assert sorted(u.image_id for u in listed) == sorted(i for i, (_, _, key, _) in keys.items() if key is None)
    assert len(list(provenance.unknown(engine, "inat21", limit=2))) == 2
    for source in ("eol", "inat21", "bioscan"):
        images = [v for v in keys.values() if v[0] == source]
        assert results[source].images == len(images)
        assert results[source].known == sum(1 for v in images if v[2] is not None)
    # What the files held that is not an image's license: malformed rows, and a repeated content id.
    assert results["eol"].rejects == {"content id is not a whole number": 1, "expected 6 fields": 1}
    assert results["inat21"].rejects == {"file_name is not train/<class folder>/<uuid>.jpg": 1}
    assert results["eol"].duplicates >= 1 and results["bioscan"].status == "one license for the whole collection"
    with engine.connect() as connection:
        rejected = connection.execute(text(
            "SELECT resource, COUNT(*) FROM ref_rejects WHERE resource IN ('eol_media_manifest', "
            "'inat21_annotations') GROUP BY resource ORDER BY resource")).all()
        citations = dict(connection.execute(text("SELECT source, citation FROM source_provenance")).all())
    assert [tuple(r) for r in rejected] == [("eol_media_manifest", 2), ("inat21_annotations", 1)]
    assert set(citations) == {"eol", "inat21", "bioscan"} and all(c.startswith("@") for c in citations.values())
    # Loading again (here through the command line, with the collection's tol.toml) replaces the previous
    # load: the same rows, no duplicates; `tol licenses unknown` lists the unknown ones, tab-separated.
    url = engine.url.render_as_string(hide_password=False)
    env = tol_env(url, tmp_path)
    loaded = subprocess.run([TOL, "-q", "--config", str(sample_collection / "tol.toml"), "licenses", "load"],
                            env=env, capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    eol_line = next(line for line in loaded.stdout.splitlines()
                    if line.startswith("licenses eol: ") and "images" in line)
    assert f"license known for {results['eol'].known:,}," in eol_line
    assert catalog_keys(engine) == keys
    listed_eol = subprocess.run([TOL, "-q", "licenses", "unknown", "--source", "eol"], env=env, capture_output=True,
                                text=True).stdout.splitlines()
    assert sorted(line.split("\t")[0] for line in listed_eol) == sorted(
        i for i, (source, _, key, _) in keys.items() if key is None and source == "eol")
    assert {line.split("\t")[3] for line in listed_eol} == {reason for (source, _, key, reason) in keys.values()
                                                           if key is None and source == "eol"}


def test_a_plan_with_licenses_leaves_out_the_others_and_counts_them(prepared, sample_collection: Path,
                                                                     tmp_path: Path):
    _, engine = prepared
    provenance.load(engine, provenance_paths(sample_collection))
    everything = make_plan(engine, tmp_path / "all", name="all")
    allowed = ("cc0", "pd", "cc-by")
    some = make_plan(engine, tmp_path / "some", name="some", licenses=allowed)
    keys = catalog_keys(engine)
    with engine.connect() as connection:
        members = {name: {row[0] for row in connection.execute(text(
            "SELECT treeoflife_id FROM plan_samples WHERE plan_name = :p"), {"p": name})} for name in ("all", "some")}
        recorded = connection.execute(text("SELECT licenses, n_left_out FROM plan_license_filters "
                                           "WHERE plan_id = :p"), {"p": some.id}).one()
    expected = expected_keys(sample_collection)
    kept = {i for i in members["all"] if generator_key(expected, keys[i][0], keys[i][1]) in allowed}
    assert members["some"] == kept and 0 < len(kept) < len(members["all"])
    assert tuple(recorded) == ("cc0,pd,cc-by", len(members["all"]) - len(kept))
    assert (some.n_excluded, some.n_unnamed) == (everything.n_excluded, everything.n_unnamed)
    assert some.n_samples == len(kept)
    # The same name with other licenses is another plan: refused; the same options again are a no-op.
    with pytest.raises(TolError, match="already exists with other options"):
        make_plan(engine, tmp_path / "some", name="some", licenses=("cc0",))
    assert make_plan(engine, tmp_path / "some", name="some", licenses=allowed).id == some.id


def test_samples_and_licenses_csv_carry_each_images_provenance(prepared, sample_collection: Path, tmp_path: Path):
    url, engine = prepared
    provenance.load(engine, provenance_paths(sample_collection))
    out = tmp_path / "out"
    plan = make_plan(engine, out, name="p-val", split="val", per_shard=20)
    write_plan(write_options(url, plan.name, tmp_path / "cache"), 1)
    keys = catalog_keys(engine)
    expected = expected_keys(sample_collection)
    samples = {}
    for shard in sorted(out.glob("shard-*.tar")):
        with tarfile.open(shard) as archive:
            for member in archive:
                if member.name.endswith(".json"):
                    record = json.loads(archive.extractfile(member).read())  # type: ignore[union-attr]
                    samples[record["treeoflife_id"]] = record
    assert samples
    for image, record in samples.items():
        source, name, _, _ = keys[image]
        assert record["license"] == generator_key(expected, source, name)
        assert {k: type(record[k]) for k in ("license_name", "license_link", "rights_holder", "source_url")} == \
            dict.fromkeys(("license_name", "license_link", "rights_holder", "source_url"), str)
        if source == "bioscan":
            assert (record["license_name"], record["rights_holder"]) == (
                "CC BY 3.0", "CBG Photography Group, Centre for Biodiversity Genomics, University of Guelph")
    target = tmp_path / "licenses.csv"
    done = subprocess.run([TOL, "-q", "catalog", "export", plan.name, "--what", "licenses", "--out", str(target)],
                          env=tol_env(url, tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with open(target, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    # The release's columns (sources spec §6.5), one row per written sample, `not provided` for missing texts.
    assert rows[0] == ["treeoflife_id", "eol_content_id", "eol_page_id", "md5", "medium_source_url",
                       "eol_full_size_copy_url", "license_name", "copyright_owner", "license_link", "title"]
    assert sorted(r[0] for r in rows[1:]) == sorted(samples)
    for row in rows[1:]:
        record = samples[row[0]]
        assert row[6] == (record["license_name"] or "not provided")
        assert row[7] == (record["rights_holder"] or "not provided")
        assert row[3] == "not provided" and row[9] == "not provided"  # the six-column manifest has neither
        if record["source"] == "eol":
            assert (row[1], row[2]) == (record["eol_content_id"], record["eol_page_id"])
            assert row[4] == (record["source_url"] or "not provided")
        else:
            assert (row[1], row[2]) == ("", "")


@pytest.mark.parametrize(("args", "fragment"), [
    (["licenses", "load", "--source", "nope"], "unknown source nope"),
    (["licenses", "unknown", "--source", "nope"], "unknown source nope"),
    (["licenses", "load", "--eol-media-manifest", "absent.csv"], "absent.csv"),
    (["shards", "plan", "p", "--splits", "main", "--split", "train", "--licenses", "cc-by,see source"],
     "--licenses: 'see source'"),
    (["catalog", "export", "p", "--what", "everything", "--out", "x.csv"], "--what"),
])
def test_bad_provenance_arguments_are_one_line_exit_2(catalog_url, tmp_path: Path, args, fragment):
    done = subprocess.run([TOL, "-q", *args], env=tol_env(catalog_url, tmp_path), capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and fragment in done.stderr

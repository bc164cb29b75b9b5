"""Source integrity: ingest records each file's mtime (and with --checksum its sha256); the write stage reports a
file changed since ingest as an image error "changed since ingest" and does not publish it. Both databases."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import text

from etl import catalog, exclusions, splits, taxonomy
from etl.reader import stamp_difference
from etl.sampledata import generate
from etl.sampledata.tamper import append_bytes, overwrite_middle
from etl.write.worker import run_worker
from tests.helpers import make_plan, metadata_of, reference_paths, roots, write_options

SOURCES = ("inat21", "eol", "bioscan")


@pytest.fixture(scope="module")
def collection_template(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("integrity") / "collection"
    generate(out, images=60, seed=5)
    return out


@pytest.fixture
def collection(collection_template: Path, tmp_path: Path) -> Path:
    """A private copy (the tests change files in it), with the original mtimes."""
    copy = tmp_path / "collection"
    shutil.copytree(collection_template, copy)
    return copy


def ingest(engine, collection: Path, *, checksum: bool = False) -> None:
    for source in SOURCES:
        catalog.ingest(engine, source, roots(collection)[source], metadata=metadata_of(collection),
                       checksum=checksum, echo=lambda _: None)


@pytest.mark.parametrize(("size", "mtime", "recorded_size", "recorded_mtime", "expected"), [
    (10, 5, 10, 5, None),
    (10, 5, 10, None, None),  # catalogued before mtimes were recorded: only the size is compared
    (None, 5, 10, 5, None),  # an archive member: its size is not seen without reading it
    (12, 5, 10, 5, "changed since ingest: 12 bytes, the catalog says 10"),
    (10, 6, 10, 5, "changed since ingest: modified after it was catalogued"),
    (None, 6, 10, 5, "changed since ingest: modified after it was catalogued"),
    (1_000_000, 6, 999_999, 5, "changed since ingest: 1,000,000 bytes, the catalog says 999,999"),
])
def test_stamp_difference(size, mtime, recorded_size, recorded_mtime, expected):
    assert stamp_difference(size, mtime, recorded_size, recorded_mtime) == expected


def eol_member_hashes(root: Path) -> dict[tuple[str, str], str]:
    """(archive, member) → sha256, read with tarfile (independently of the ingest code)."""
    found = {}
    for archive in sorted(root.rglob("*.tar.gz")):
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    if member.isfile():
                        data = tar.extractfile(member).read()  # type: ignore[union-attr]
                        if len(data) == member.size:
                            found[(str(archive.relative_to(root)), member.name)] = hashlib.sha256(data).hexdigest()
        except (OSError, EOFError, tarfile.TarError):
            continue  # the collection's damaged archive: the members read before the damage are kept
    return found


def test_ingest_records_mtimes_and_checksums(catalog_url, engine_of, collection: Path):
    engine = engine_of(catalog_url)
    ingest(engine, collection, checksum=True)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT source, path, member, source_mtime_ns, content_sha256 FROM images")).all()
    assert {row.source for row in rows} == set(SOURCES)
    members = eol_member_hashes(roots(collection)["eol"])
    for source, path, member, mtime, digest in rows:
        location = roots(collection)[source] / path
        assert mtime == os.stat(location).st_mtime_ns
        if member is None:
            assert digest == hashlib.sha256(location.read_bytes()).hexdigest()
        else:
            assert digest == members.get((path, member))


def test_without_checksum_a_reingest_keeps_hashes_of_unchanged_files(catalog_url, engine_of, collection: Path):
    engine = engine_of(catalog_url)
    ingest(engine, collection, checksum=True)
    changed = sorted((roots(collection)["inat21"]).rglob("*.jpg"))[0]
    overwrite_middle(changed)
    ingest(engine, collection, checksum=False)
    relative = str(changed.relative_to(roots(collection)["inat21"]))
    with engine.connect() as connection:
        rows = {path: (mtime, digest) for path, mtime, digest in connection.execute(text(
            "SELECT path, source_mtime_ns, content_sha256 FROM images WHERE source = 'inat21'"))}
    assert rows[relative] == (changed.stat().st_mtime_ns, None)
    assert all(digest is not None for path, (_, digest) in rows.items() if path != relative)


def test_a_file_changed_after_ingest_is_an_image_error_not_a_sample(catalog_url, engine_of, collection: Path,
                                                                    tmp_path: Path):
    engine = engine_of(catalog_url)
    ingest(engine, collection)
    taxonomy.load(engine, reference_paths(collection))
    taxonomy.resolve(engine)
    exclusions.load_rare_species(engine, collection / "rarespecies" / "seen_in_training.json",
                                 collection / "rarespecies" / "unseen_in_training.json")
    splits.create(engine, "main", 17, 5, 10)
    plan = make_plan(engine, tmp_path / "out", per_shard=10)
    with engine.connect() as connection:
        planned = connection.execute(text(
            "SELECT i.id, i.source, i.path, i.member FROM shard_members AS m JOIN images AS i ON i.id = m.image_id "
            "JOIN shards AS s ON s.id = m.shard_id WHERE s.plan_id = :p ORDER BY i.id"), {"p": plan.id}).all()
    same_size = next(row for row in planned if row.source == "inat21")
    grown = next(row for row in planned if row.source == "bioscan")
    archive = next(row for row in planned if row.source == "eol")
    overwrite_middle(roots(collection)["inat21"] / same_size.path)
    append_bytes(roots(collection)["bioscan"] / grown.path)
    archive_path = roots(collection)["eol"] / archive.path
    os.utime(archive_path, ns=(archive_path.stat().st_atime_ns, archive_path.stat().st_mtime_ns + 10**9))
    run_worker(write_options(catalog_url, plan.name, tmp_path / "cache"))
    with engine.connect() as connection:
        errors = dict(connection.execute(text("SELECT image_id, reason FROM image_errors")).all())
        eol_in_archive = set(connection.execute(text(
            "SELECT i.id FROM shard_members AS m JOIN images AS i ON i.id = m.image_id JOIN shards AS s "
            "ON s.id = m.shard_id WHERE s.plan_id = :p AND i.source = 'eol' AND i.path = :a"),
            {"p": plan.id, "a": archive.path}).scalars())
    assert errors[same_size.id] == "changed since ingest: modified after it was catalogued"
    size = (roots(collection)["bioscan"] / grown.path).stat().st_size
    assert errors[grown.id] == f"changed since ingest: {size:,} bytes, the catalog says {size - 100:,}"
    assert all(errors[image] == "changed since ingest: modified after it was catalogued" for image in eol_in_archive)
    written = set()
    for tar in (tmp_path / "out").glob("shard-*.tar"):
        with tarfile.open(tar) as handle:
            written |= {name.partition(".")[0] for name in handle.getnames()}
    assert same_size.id not in written and grown.id not in written and not (eol_in_archive & written)
    # Each error records its image's slot, and plan_members places the written samples as the tars hold them.
    with engine.connect() as connection:
        slots = connection.execute(text(
            "SELECT e.planned_position, m.position FROM image_errors AS e JOIN shard_members AS m "
            "ON m.shard_id = e.shard_id AND m.image_id = e.image_id")).all()
        places = connection.execute(text(
            "SELECT shard_path, position, image_id FROM plan_members WHERE plan_id = :p AND written = 1 "
            "ORDER BY shard_path, position"), {"p": plan.id}).all()
    assert len(slots) == len(errors) and all(recorded == slot for recorded, slot in slots)
    in_tars = []
    for tar in sorted((tmp_path / "out").glob("shard-*.tar")):
        with tarfile.open(tar) as handle:
            keys = list(dict.fromkeys(name.partition(".")[0] for name in handle.getnames()))
        in_tars += [(tar.name, position, key) for position, key in enumerate(keys)]
    assert [(Path(path).name, position, image) for path, position, image in places] == in_tars

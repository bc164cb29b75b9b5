"""Issue 12's proof that a collection is added by its own module and one migration: tests/fourth_source holds
both, registered in this process only, and its images go through ingest → names → plan → write beside iNat21's.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import webdataset
from PIL import Image
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from etl import catalog, config, schema, sources, splits, taxonomy
from etl.models import Exclusion
from etl.plan import PlanOptions, create_plan
from etl.write.launch import write_plan
from etl.write.worker import WriteOptions
from tests import fourth_source
from tests.fourth_source import folder_csv
from tests.helpers import reference_paths

# file name → (kingdom, phylum, class, order, family, genus, species, common name); names no reference file of
# the sample collection knows, so the common names on the captions can only come from taxa.csv.
TAXA = {
    "rose-1.jpg": ("Plantae", "Tracheophyta", "Magnoliopsida", "Rosales", "Rosaceae", "Rosa", "canina", "Dog rose"),
    "rose-2.jpg": ("Plantae", "Tracheophyta", "Magnoliopsida", "Rosales", "Rosaceae", "Rosa", "canina", "Dog rose"),
    "newt.jpg": ("Animalia", "Chordata", "Amphibia", "Caudata", "Salamandridae", "Triturus", "cristatus",
                 "Great crested newt"),
    "excluded.jpg": ("Animalia", "Chordata", "Amphibia", "Caudata", "Salamandridae", "Triturus", "cristatus",
                     "Great crested newt"),
}
UNLISTED = "stray.jpg"  # an image taxa.csv does not name: rejected


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _write_folder(folder: Path) -> Path:
    """The collection: a JPEG per taxa.csv record, one JPEG without a record, one file that is not an image."""
    folder.mkdir()
    for number, name in enumerate([*TAXA, UNLISTED]):
        (folder / name).write_bytes(_jpeg((40 * number, 120, 200 - 30 * number)))
    (folder / "notes.txt").write_text("not an image\n")
    taxa = folder / folder_csv.TAXA_FILE
    with open(taxa, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(folder_csv.TAXA_COLUMNS)
        writer.writerows((name, *values) for name, values in TAXA.items())
    return taxa


def test_a_source_registered_in_its_own_module_goes_from_ingest_to_shards(
        catalog_url, engine_of, sample_collection: Path, tmp_path: Path):
    engine = engine_of(catalog_url)
    fourth_source.upgrade(engine)
    assert schema.current_revision(engine) == fourth_source.REVISION
    taxa_file = _write_folder(tmp_path / "folder")
    inat21_root = config.resolve({}, {}, sample_collection / "tol.toml").path("inat21_root")
    with engine.begin() as connection:  # the migration's new branch of image_exclusions: by path
        connection.execute(insert(Exclusion).values(list_name="test", kind="image", reason="test",
                                                    entry="excluded.jpg", file_name="excluded.jpg"))

    with sources.registered(folder_csv):
        assert sources.by_name("folder_csv") is folder_csv
        summary = catalog.ingest(engine, "folder_csv", taxa_file.parent, metadata=taxa_file, echo=lambda _: None)
        assert (summary.added, summary.rejected) == (len(TAXA), 2)
        assert {r.path for r in summary.reject_examples} == {UNLISTED, "notes.txt"}
        catalog.ingest(engine, "inat21", inat21_root, echo=lambda _: None)
        taxonomy.load(engine, reference_paths(sample_collection))
        resolved = taxonomy.resolve(engine)
        assert resolved.keys["folder_csv"] == 2
        splits.create(engine, "all", seed=3, val_percent=0, train_small_percent=0)
        out_dir = tmp_path / "shards"
        plan, _ = create_plan(engine, "all-train", PlanOptions(split_name="all", split="train", width=32,
                                                               height=32, samples_per_shard=100,
                                                               out_dir=str(out_dir)))
        assert plan.n_excluded == 1
        # One worker runs in this process. Worker processes would not see this registration (it is not in
        # etl/sources), so they could not read folder_csv's images.
        roots = {}  # every root is the one its ingest recorded
        write_plan(WriteOptions(catalog_url, "all-train", roots, tmp_path / "cache"), 1)

    assert "folder_csv" not in sources.SOURCE_NAMES
    with engine.connect() as connection:  # the sample collection's damaged iNat21 images fail to be written
        failed = connection.execute(text("SELECT COUNT(*) FROM image_errors")).scalar_one()
    shards = sorted(str(path) for path in out_dir.rglob("*.tar"))
    samples = [json.loads(sample["json"]) | sample for sample in webdataset.WebDataset(shards, shardshuffle=False)]
    assert len(samples) == plan.n_samples - failed
    ours = {sample["treeoflife_id"]: sample for sample in samples if sample["source"] == "folder_csv"}
    expected = {folder_csv.image_id(name): values for name, values in TAXA.items() if name != "excluded.jpg"}
    assert set(ours) == set(expected)
    for image_id, (*ranks, common) in expected.items():
        sample = ours[image_id]
        genus, species = ranks[5], ranks[6]
        assert sample["common_name.txt"].decode() == common
        assert sample["scientific_name.txt"].decode() == f"{genus} {species}"
        assert sample["com.txt"].decode() == f"a photo of {common}."
        assert [sample[rank] for rank in ("kingdom", "family", "genus")] == [ranks[0], ranks[4], genus]
        assert Image.open(io.BytesIO(sample["jpg"])).size == (32, 32)

    fourth_source.downgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
    with engine.connect() as connection:
        counts = dict(connection.execute(text("SELECT source, COUNT(*) FROM images GROUP BY source")).all())
        tables = set(connection.dialect.get_table_names(connection))
    assert set(counts) == {"inat21"}
    assert not tables & {"folder_csv_taxa", "names_folder_csv_labels"}
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("INSERT INTO images (id, source, path, byte_size, split_hash) "
                                "VALUES ('x', 'folder_csv', 'x.jpg', 1, 1)"))

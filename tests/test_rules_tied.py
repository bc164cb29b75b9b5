"""Rules stated twice, once in Python and once in SQL, tied together on every row of a realistic catalog.

Display case and the caption's common name are computed by `etl.naming` for the tar members and by the
views `taxon_names` (per taxon: what the export and `plan_samples` show) and `image_names` for exports and
queries. Both stay (the views let SQL users see what a sample shows without Python), so this test compares
them row by row; changing one side alone fails here.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from etl import naming, splits
from etl.plan import SPLITS, PlanOptions, create_plan
from tests.helpers import ingest_and_name


def test_views_show_what_naming_computes(catalog_url, engine_of, sample_collection: Path, tmp_path: Path):
    engine = engine_of(catalog_url)
    ingest_and_name(engine, sample_collection)
    # The sample collection resolves no taxon whose species slot stands without a genus (the case of Fix #16
    # that the views treat apart), so some images are given one here, built as naming.names builds names.
    bare_species = ("animalia", "mollusca", "bivalvia", "ostreida", "ostreidae", "", "ostrea")
    scientific, taxonomic, tagged = naming.names(bare_species)
    with engine.begin() as connection:
        new_id = connection.execute(text("SELECT MAX(id) + 1 FROM taxa")).scalar_one()
        connection.execute(text("""
            INSERT INTO taxa (id, kingdom, phylum, "class", "order", family, genus, species, scientific_name,
                              taxonomic_name, tagged_name, common_name)
            VALUES (:id, :k, :p, :c, :o, :f, :g, :s, :sci, :tax, :tag, '')"""), {
            "id": new_id, **dict(zip(("k", "p", "c", "o", "f", "g", "s"), bare_species, strict=True)),
            "sci": scientific, "tax": taxonomic, "tag": tagged})
        connection.execute(text(
            "UPDATE images SET taxon_id = :id WHERE id IN (SELECT id FROM images WHERE taxon_id IS NOT NULL "
            "ORDER BY id LIMIT 60)"), {"id": new_id})
    splits.create(engine, "main", 17, 5, 10)
    for split in SPLITS:
        create_plan(engine, f"tied-{split}", PlanOptions(split_name="main", split=split, samples_per_shard=100,
                                                          out_dir=str(tmp_path / split)))
    with engine.connect() as connection:
        planned = connection.execute(text("""
            SELECT s.kingdom, s.phylum, s."class", s."order", s.family, s.genus, s.species, s.common,
                   t.kingdom, t.phylum, t."class", t."order", t.family, t.genus, t.species,
                   t.common_name, t.scientific_name, t.taxonomic_name
            FROM plan_samples AS s JOIN images AS i ON i.id = s.treeoflife_id JOIN taxa AS t ON t.id = i.taxon_id
        """)).all()
        named = connection.execute(text("""
            SELECT caption_common, common_name, scientific_name, taxonomic_name FROM image_names
            WHERE taxon_id IS NOT NULL""")).all()
        per_taxon = connection.execute(text("""
            SELECT n.kingdom, n.phylum, n."class", n."order", n.family, n.genus, n.species, n.common,
                   t.kingdom, t.phylum, t."class", t."order", t.family, t.genus, t.species,
                   t.common_name, t.scientific_name, t.taxonomic_name
            FROM taxon_names AS n JOIN taxa AS t ON t.id = n.taxon_id""")).all()
    assert len(planned) > 500 and len(named) > 500
    shown_species_without_genus = 0
    for row in planned:
        shown, stored = tuple(row[:7]), tuple(row[8:15])
        common, scientific, taxonomic = row[15:18]
        assert shown == naming.display(stored), stored
        assert row[7] == naming.common_or_fallback(common or "", scientific or "", taxonomic or "")
        shown_species_without_genus += bool(stored[6] and not stored[5])
    # The export reads the names per taxon from `taxon_names` (plan_samples joins the same view).
    assert len(per_taxon) > 50 and any(row[14] and not row[13] for row in per_taxon)
    for row in per_taxon:
        assert tuple(row[:7]) == naming.display(tuple(row[8:15])), row[8:15]
        assert row[7] == naming.common_or_fallback(row[15] or "", row[16] or "", row[17] or "")
    for caption_common, common, scientific, taxonomic in named:
        assert caption_common == naming.common_or_fallback(common or "", scientific or "", taxonomic or "")
    assert shown_species_without_genus > 0

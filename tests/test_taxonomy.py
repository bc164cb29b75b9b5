"""The taxonomy stage end to end on a sample collection, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import text

from etl import naming, schema, taxonomy
from etl.cli import cli
from etl.sampledata.fixtures import EOL_PLACEHOLDER_PAGES
from tests.helpers import ingest_all, ingest_and_name, reference_paths

PICA = "Animalia Chordata Aves Passeriformes Corvidae Pica hudsonia"
T5 = "Animalia Arthropoda Insecta Diptera Cecidomyiidae"


def captions_of(engine, where: str, params: dict) -> dict[str, str]:
    with engine.connect() as connection:
        scientific, taxonomic, tagged, common = connection.execute(text(
            "SELECT n.scientific_name, n.taxonomic_name, n.tagged_name, n.common_name FROM image_names AS n "
            f"JOIN images AS i ON i.id = n.image_id WHERE {where} LIMIT 1"), params).one()
    return naming.captions(scientific, taxonomic, tagged, common)


def test_every_image_named_and_captions_of_examples(catalog_url, engine_of, sample_collection: Path):
    engine = engine_of(catalog_url)
    summary = ingest_and_name(engine, sample_collection)
    assert summary.unnamed_images > 0 and summary.named_images > 0
    assert summary.missing_resources == []
    with engine.connect() as connection:
        unnamed_pages = {page for (page,) in connection.execute(text(
            "SELECT DISTINCT eol_page_id FROM images WHERE taxon_id IS NULL AND status = 'present'"))}
    assert unnamed_pages == set(EOL_PLACEHOLDER_PAGES)  # only the pages named by a placeholder (`not provided`)
    eol = captions_of(engine, "i.eol_page_id = :p", {"p": 45511401})
    assert eol["sci_com.txt"] == "a photo of Pica hudsonia with common name Black-billed Magpie."
    assert eol["taxon.txt"] == f"a photo of {PICA}."
    bioscan = captions_of(engine, "i.bioscan_filename = :f", {"f": "4286925.jpg"})
    assert bioscan["sci.txt"] == f"a photo of {T5}." and bioscan["common_name.txt"] == T5
    contarinia = captions_of(engine, "i.bioscan_filename = :f", {"f": "3995976.jpg"})
    assert contarinia["com.txt"] == "a photo of swede midge."
    inat = captions_of(engine, "i.inat21_cls_num = :c", {"c": 0})
    assert inat["common_name.txt"] == "common earthworm"
    assert inat["taxonomic_name.txt"] == "Animalia Annelida Clitellata Haplotaxida Lumbricidae Lumbricus terrestris"
    manta = captions_of(engine, "i.eol_page_id = :p", {"p": 49672921})
    assert manta["taxonomic_name.txt"].split()[2] == "Chondrichthyes"
    with engine.connect() as connection:
        # Work is per key: one row per page / class / label, and images joined to them.
        pages = connection.execute(text("SELECT COUNT(*) FROM names_eol_pages")).scalar_one()
        distinct_pages = connection.execute(text(
            "SELECT COUNT(DISTINCT eol_page_id) FROM images WHERE source = 'eol'")).scalar_one()
        indices = connection.execute(text(
            "SELECT COUNT(DISTINCT class_index_species), COUNT(*) FROM taxa")).one()
    assert pages == distinct_pages
    assert indices[0] == indices[1]  # one species index per taxon


def test_identical_on_both_databases(sample_collection: Path, empty_sqlite_url, empty_pg_url, engine_of):
    snapshots = []
    for url in (empty_sqlite_url, empty_pg_url):
        engine = engine_of(url)
        schema.upgrade(engine)
        ingest_and_name(engine, sample_collection)
        with engine.connect() as connection:
            snapshots.append((
                sorted(map(tuple, connection.execute(text(
                    'SELECT i.id, t.id, t.kingdom, t.phylum, t."class", t."order", t.family, t.genus, t.species, '
                    "t.common_name, t.class_index_kingdom, t.class_index_species "
                    "FROM images AS i LEFT JOIN taxa AS t ON t.id = i.taxon_id")))),
                sorted(map(tuple, connection.execute(text("SELECT * FROM names_eol_pages")))),
            ))
    assert snapshots[0] == snapshots[1]


def test_missing_references_are_reported_and_naming_goes_on(catalog_url, engine_of, sample_collection: Path):
    engine = engine_of(catalog_url)
    ingest_all(engine, sample_collection)
    paths = reference_paths(sample_collection)
    paths["itis_chains"] = None
    paths["resolver_output"] = sample_collection / "nowhere.jsonl"
    results = {r.name: r.status for r in taxonomy.load(engine, paths)}
    assert results["itis_chains"].startswith("skipped") and results["resolver"] == "skipped: file not found"
    summary = taxonomy.resolve(engine)
    assert set(summary.missing_resources) == {"itis_chains", "resolver"}
    assert summary.named_images > 0
    with engine.connect() as connection:
        # Without ITIS and the resolver, Trametes trogii keeps only what EOL knows.
        trametes = connection.execute(text(
            "SELECT t.taxonomic_name FROM names_eol_pages AS n JOIN taxa AS t ON t.id = n.taxon_id "
            "WHERE n.page_id = 1000070")).scalar_one()
    assert trametes == "Trametes trogii"


def test_unnamed_page_is_recorded(catalog_url, engine_of, sample_collection: Path):
    engine = engine_of(catalog_url)
    ingest_all(engine, sample_collection)
    paths = reference_paths(sample_collection)
    paths["eol_scraped_page_ids"] = None
    taxonomy.load(engine, paths)
    taxonomy.resolve(engine)
    with engine.connect() as connection:
        reason = connection.execute(text(
            "SELECT DISTINCT unnamed_reason FROM image_names WHERE source = 'eol' AND taxon_id IS NULL "
            "AND unnamed_reason LIKE '%1000200%'")).scalar_one()
    assert "has no taxon" in reason


def test_reload_replaces_rows(catalog_url, engine_of, sample_collection: Path):
    engine = engine_of(catalog_url)
    paths = reference_paths(sample_collection)
    first = {r.name: r.rows for r in taxonomy.load(engine, paths)}
    second = {r.name: r.rows for r in taxonomy.load(engine, paths)}
    assert first == second
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM ref_itis_chains")).scalar_one() == first["itis_chains"]


def test_taxa_check_cli(prepared_sqlite_url: str):
    url = prepared_sqlite_url
    result = CliRunner().invoke(cli, ["--database-url", url, "taxa", "check"])
    assert result.exit_code == 0, result.output
    assert "== Kingdoms" in result.output and "== Naming depth" in result.output
    assert "Placeholders" in result.output and ": 0" in result.output.split("Placeholders")[1].splitlines()[0]


def test_resolving_again_changes_nothing(prepared_url, engine_of):
    engine = engine_of(prepared_url)  # ingested and named once already

    def snapshot():
        with engine.connect() as connection:
            return sorted(map(tuple, connection.execute(text(
                "SELECT i.id, i.taxon_id, i.unnamed_reason, t.taxonomic_name, t.common_name, t.class_index_genus "
                "FROM images AS i LEFT JOIN taxa AS t ON t.id = i.taxon_id"))))

    first = snapshot()
    taxonomy.resolve(engine)
    assert snapshot() == first


def random_hierarchy(rng, n_pages: int) -> tuple[list[tuple], list[tuple], dict]:
    """A messy Dynamic Hierarchy: rows without pages, pages listed twice, parents that are missing, a cycle,
    genus names shared by several pages; scraped names for pages the DH lacks; seeds overriding DH pages."""
    ranks = ["kingdom", "phylum", "class", "order", "family", "genus", "species", "subspecies", "clade", ""]
    genus_names = [f"Genus{n}" for n in range(max(3, n_pages // 20))]
    dh: list[tuple] = []
    for n in range(n_pages * 2):
        page = rng.randrange(1, n_pages) if rng.random() < 0.9 else None  # pages repeat: first row wins
        rank = rng.choice(ranks)
        name = (rng.choice(genus_names) if rank == "genus" else
                f"{rng.choice(genus_names)} epithet{n}" if rank == "species" else f"Name{n}")
        parent = f"T{rng.randrange(0, len(dh))}" if dh and rng.random() < 0.9 else rng.choice(["", "T-missing"])
        dh.append((n + 1, f"T{n}", parent, rank, name, page))
    dh.append((len(dh) + 1, "T-cycle-a", "T-cycle-b", "family", "Loopidae", n_pages + 1))
    dh.append((len(dh) + 1, "T-cycle-b", "T-cycle-a", "order", "Loopales", n_pages + 2))
    scraped = [(n + 1, n_pages + 10 + n, rng.choice([
        f"{rng.choice(genus_names)} scraped{n} (Author, 1900)", f"<i>{rng.choice(genus_names)}</i> x{n}",
        f"Lonely{n}", "", f"genus{n % 3} lower{n}"])) for n in range(n_pages // 4)]
    corrections = {"eol_page_seeds": [
        {"page_id": 1, "rank": "species", "value": "seeded", "parent_page_id": 2},
        {"page_id": n_pages + 5, "rank": "genus", "value": "seedgenus", "parent_page_id": 3}]}
    return dh, scraped, corrections


def test_eol_index_reads_only_the_paths_of_wanted_pages_and_names_alike(catalog_url, engine_of):
    """The index built from the rows on wanted pages' paths gives the same taxon for every wanted page as one
    built from every DH row (the old way), on both databases, for several random hierarchies."""
    import random

    from etl import bulk

    engine = engine_of(catalog_url)
    for seed in range(4):
        rng = random.Random(seed)
        dh, scraped, corrections = random_hierarchy(rng, 400)
        wanted = {rng.randrange(1, 420) for _ in range(60)} | {page for _, page, _ in scraped[::2]} | {1, 405}
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM ref_eol_taxa")
            connection.exec_driver_sql("DELETE FROM ref_eol_scraped")
            bulk.load_rows(connection, "ref_eol_taxa", ("row_no", "taxon_id", "parent_taxon_id", "rank",
                                                         "canonical_name", "page_id"), dh)
            bulk.load_rows(connection, "ref_eol_scraped", ("row_no", "page_id", "scientific_name"), scraped)
            every_row = connection.execute(text("""
                SELECT c.page_id, c.rank, c.canonical_name, p.page_id FROM ref_eol_taxa AS c
                LEFT JOIN ref_eol_taxa AS p ON p.taxon_id = c.parent_taxon_id AND p.page_id IS NOT NULL
                WHERE c.page_id IS NOT NULL ORDER BY c.row_no""")).all()
            full = taxonomy.eol_index_from_rows(corrections, every_row, [row[1:] for row in scraped], wanted)
            targeted = taxonomy.build_eol_index(connection, corrections, wanted)
        assert len(targeted.pages) < len(full.pages)
        named = 0
        for page in sorted(wanted):
            assert targeted.taxon(page) == full.taxon(page), f"seed {seed}, page {page}"
            named += any(full.taxon(page))
        assert named > len(wanted) // 2


def test_genus_and_family_pages_of_the_sample(catalog_url, engine_of, sample_collection: Path):
    """Issue 13 point 5 on the sample, each page placed by the first source that knows it (written by hand from
    the fixtures: DH's Quercus chain, the resolver's `Ostrea edulis`, iNat21's `Atypoides riversi`)."""
    engine = engine_of(catalog_url)
    ingest_and_name(engine, sample_collection)
    with engine.connect() as connection:
        taxa = {page: (tuple(ranks), changes) for page, changes, *ranks in connection.execute(text(
            'SELECT n.page_id, n.changes, t.kingdom, t.phylum, t."class", t."order", t.family, t.genus, t.species '
            "FROM names_eol_pages AS n JOIN taxa AS t ON t.id = n.taxon_id "
            "WHERE n.page_id IN (1000207, 1000208, 1000209)"))}
    # A genus page the hierarchy places: ranks from DH, nothing upgraded.
    assert taxa[1000208] == (("plantae", "tracheophyta", "magnoliopsida", "fagales", "fagaceae", "quercus", ""), None)
    # A family page: ranks above it from the resolver's Ostreidae (ITIS/resolver step).
    ranks, changes = taxa[1000207]
    assert ranks == ("animalia", "mollusca", "bivalvia", "ostreida", "ostreidae", "", "")
    assert "order: - → ostreida" in changes
    # A genus nothing else knows: the consensus of the catalogued species of that genus (iNat21's).
    ranks, changes = taxa[1000209]
    assert ranks == ("animalia", "arthropoda", "arachnida", "araneae", "antrodiaetidae", "atypoides", "")
    assert "consensus of 1 catalogued species of genus atypoides" in changes

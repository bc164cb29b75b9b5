"""The naming rules, table-driven from the worked examples of naming.md §12 (with our documented fixes)."""

from __future__ import annotations

import pytest

from etl import naming, taxonomy
from etl.sampledata import (
    BIOSCAN_FIXTURES,
    EOL_FIXTURE_CHAINS,
    EOL_SCRAPED,
    EOL_VERNACULAR_FIXTURES,
    INAT_FIXTURE_CLASSES,
    INAT_VERNACULAR_FIXTURES,
    ITIS_FIXTURES,
    RESOLVER_FIXTURES,
)
from etl.sampledata.references import DynamicHierarchy
from etl.sources.bioscan import label_taxon
from etl.sources.inat21 import parse_class_folder

CORRECTIONS = taxonomy.load_corrections()


def _fixture_world():
    """The upgrade table, EOL index and common-name map of the worked examples' reference data."""
    table = taxonomy.upgrade_table_from_rows(
        CORRECTIONS,
        [(n, *row[:7]) for n, row in enumerate(ITIS_FIXTURES)],
        [(n, name, *ranks) for n, (name, ranks) in enumerate(RESOLVER_FIXTURES)])
    pages = iter(range(9_000_000, 9_100_000))
    dh = DynamicHierarchy(lambda: next(pages))
    for chain in EOL_FIXTURE_CHAINS:
        dh.add(chain)
    by_taxon = {row["taxonID"]: row for row in dh.rows}
    dh_rows = [(int(row["eolID"]), row["taxonRank"].lower(), row["canonicalName"],
                int(by_taxon[row["parentNameUsageID"]]["eolID"])
                if row["parentNameUsageID"] and by_taxon[row["parentNameUsageID"]]["eolID"] else None)
               for row in dh.rows if row["eolID"]]
    index = taxonomy.eol_index_from_rows(CORRECTIONS, dh_rows, EOL_SCRAPED, {page for page, _ in EOL_SCRAPED})
    return table, index


TABLE, EOL_INDEX = _fixture_world()


def resolve_fixture(source: str, key) -> tuple[str, ...]:
    if source == "inat21":
        return naming.normalise(parse_class_folder(key).ranks)
    if source == "bioscan":
        order, family, genus, species = next(row[1:] for row in BIOSCAN_FIXTURES if row[0] == key)
        return TABLE.upgrade(label_taxon(order, family, genus, species))[0]
    if source == "eol":
        return TABLE.upgrade(EOL_INDEX.taxon(key))[0]
    return naming.normalise(key)


def common_of(scientific: str) -> str:
    mapping = taxonomy.common_names_from_rows(
        {scientific},
        [(row[5], row[6], row[7], row[8]) for row in ITIS_FIXTURES],
        [(row[6], row[7], row[0], row[8]) for row in INAT_VERNACULAR_FIXTURES],
        [(canonical, name, language, preferred) for _, canonical, name, language, preferred
         in EOL_VERNACULAR_FIXTURES])
    return mapping.get(scientific, "")


# Row, source, key, slots filled ("KPCOFGs" letters), scientific, taxonomic, common (after fallback).
# Rows marked with a fix number differ from the old output on purpose (docs/differences.md).
ROWS = [
    (1, "inat21", INAT_FIXTURE_CLASSES[0], "KPCOFGs", "Lumbricus terrestris",
     "Animalia Annelida Clitellata Haplotaxida Lumbricidae Lumbricus terrestris", "common earthworm"),
    (2, "inat21", INAT_FIXTURE_CLASSES[1], "KPCOFGs", "Cyanistes caeruleus",
     "Animalia Chordata Aves Passeriformes Paridae Cyanistes caeruleus", "Eurasian Blue Tit"),
    (3, "inat21", INAT_FIXTURE_CLASSES[2], "KPCOFGs", "Papaver rhoeas",
     "Plantae Tracheophyta Magnoliopsida Ranunculales Papaveraceae Papaver rhoeas", "Common Poppy"),
    (4, "inat21", INAT_FIXTURE_CLASSES[3], "KPCOFGs", "Atypoides riversi",
     "Animalia Arthropoda Arachnida Araneae Antrodiaetidae Atypoides riversi", "California Turret Spider"),
    (5, "bioscan", "4286925.jpg", "KPCOF", "", "Animalia Arthropoda Insecta Diptera Cecidomyiidae",
     "Animalia Arthropoda Insecta Diptera Cecidomyiidae"),
    (6, "bioscan", "5016789.jpg", "KPCOFGs", "Hydroporus striola",
     "Animalia Arthropoda Insecta Coleoptera Dytiscidae Hydroporus striola", "Hydroporus striola"),
    (7, "bioscan", "5335944.jpg", "KPCOFG", "Euplatypus",
     "Animalia Arthropoda Insecta Coleoptera Curculionidae Euplatypus", "Euplatypus"),
    (8, "bioscan", "BIOUG68114-B02.jpg", "KPCO", "", "Animalia Arthropoda Insecta Hymenoptera",
     "Animalia Arthropoda Insecta Hymenoptera"),
    # Fix #16: the voucher code keeps its case.
    (9, "bioscan", "4900531.jpg", "KPCOFGs", "Megaselia sp. 12ABC",
     "Animalia Arthropoda Insecta Diptera Phoridae Megaselia sp. 12ABC", "Megaselia sp. 12ABC"),
    (10, "bioscan", "3995976.jpg", "KPCOFGs", "Contarinia nasturtii",
     "Animalia Arthropoda Insecta Diptera Cecidomyiidae Contarinia nasturtii", "swede midge"),
    (11, "eol", 45511401, "KPCOFGs", "Pica hudsonia",
     "Animalia Chordata Aves Passeriformes Corvidae Pica hudsonia", "Black-billed Magpie"),
    (12, "eol", 49672921, "KPCOFGs", "Mobula birostris",
     "Animalia Chordata Chondrichthyes Myliobatiformes Mobulidae Mobula birostris", "Giant Manta Ray"),
    (13, "eol", 1151323, "KPCOFGs", "Quercus alba",
     "Plantae Tracheophyta Magnoliopsida Fagales Fagaceae Quercus alba", "white oak"),
    # Fix #10: EOL common names keep their case.
    (14, "eol", 1000050, "KPCOFGs", "Entomobrya nivalis",
     "Animalia Arthropoda Collembola Collembola Entomobryidae Entomobrya nivalis", "Cosmopolitan Springtail"),
    (15, "eol", 1000070, "KPCOFGs", "Trametes trogii",
     "Fungi Basidiomycota Agaricomycetes Polyporales Polyporaceae Trametes trogii", "Trogi's Bracket"),
    (16, "eol", 1000090, "KPCOFGs", "Charina umbratica",
     "Animalia Chordata Reptilia Squamata Boidae Charina umbratica", "southern rubber boa"),
    (17, "eol", 1000100, "KPCOFGs", "Leptogaster flavipes",
     "Animalia Arthropoda Insecta Diptera Asilidae Leptogaster flavipes", "Leptogaster flavipes"),
    (18, "eol", 1000110, "KPCFGs", "Varecia variegata subcincta",
     "Animalia Chordata Mammalia Lemuridae Varecia variegata subcincta", "Varecia variegata subcincta"),
    # Fix #14: the genus is a key, so the family is found (old: K P C O · G s).
    (19, "eol", 333069, "KPCOFGs", "Nyctibatrachus humayuni",
     "Animalia Chordata Amphibia Anura Nyctibatrachidae Nyctibatrachus humayuni", "Humayun's Night Frog"),
    # Fix #13: the genus word of a scraped binomial is kept (old: `Cheopis`, species only).
    (20, "eol", 1000200, "Gs", "Xenopsylla cheopis", "Xenopsylla cheopis", "Xenopsylla cheopis"),
    # Fix #13/#16: a one-word name is a genus, shown the same way everywhere (old: `Ostrea` / `ostrea`).
    (21, "eol", 1000201, "G", "Ostrea", "Ostrea", "Ostrea"),
    (22, "eol", 1000202, "Gs", "Geospiza fuliginosa", "Geospiza fuliginosa", "Geospiza fuliginosa"),
    (23, "raw", ("Metazoa", "Arthropoda", "Insecta", "Lepidoptera", "Nymphalidae", "Danaus",
                 "Danaus plexippus (Linnaeus, 1758)"), "KPCOFGs", "Danaus plexippus",
     "Animalia Arthropoda Insecta Lepidoptera Nymphalidae Danaus plexippus", "Danaus plexippus"),
    (24, "raw", ("Chloroplastida", "Tracheophyta", "Magnoliopsida", "Fagales", "Fagaceae", "Quercus",
                 "Quercus x bebbiana"), "KPCOFGs", "Quercus x bebbiana",
     "Plantae Tracheophyta Magnoliopsida Fagales Fagaceae Quercus x bebbiana", "Quercus x bebbiana"),
    (25, "raw", ("ANIMALIA", "Unknown", "(unidentified)", "PleaseHelp", "<b>Formicidae</b>", "<i>Camponotus</i>",
                 "(unidentified)"), "KFG", "Camponotus", "Animalia Formicidae Camponotus", "Camponotus"),
    (26, "raw", ("", "", "", "", "", "", "Collotheca orchidacea Meksuwan, Pholpunthin & Segers, 2013"), "Gs",
     "Collotheca orchidacea", "Collotheca orchidacea", "Collotheca orchidacea"),
    (27, "raw", ("Archaeplastida", "", "", "", "", "", "<i>Lagophylla ramosissima</i> ssp. ramosissima"), "KGs",
     "Lagophylla ramosissima", "Plantae Lagophylla ramosissima", "Lagophylla ramosissima"),
    (28, "raw", ("Fungi", "", "", "", "", "", ""), "K", "", "Fungi", "Fungi"),
    # Fix #11: a year after the epithet no longer turns Pica hudsonia into Pica pica.
    (29, "raw", ("Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Pica", "Pica hudsonia 1823"),
     "KPCOFGs", "Pica hudsonia", "Animalia Chordata Aves Passeriformes Corvidae Pica hudsonia", "Pica hudsonia"),
]


@pytest.mark.parametrize(("row", "source", "key", "filled", "scientific", "taxonomic", "common"), ROWS,
                         ids=[f"row{r[0]}" for r in ROWS])
def test_worked_examples(row, source, key, filled, scientific, taxonomic, common):
    taxon = resolve_fixture(source, key)
    assert "".join(letter for letter, value in zip("KPCOFGs", taxon, strict=True) if value) == filled
    shown = naming.names(taxon)
    assert shown.scientific == scientific
    assert shown.taxonomic == taxonomic
    expected_tagged = " ".join(f"{word} {value}" for word, value in zip(naming.RANK_NAMES, naming.display(taxon),
                                                                        strict=True) if value)
    assert shown.tagged == expected_tagged
    found = common_of(shown.scientific) if source != "raw" else ""
    assert naming.common_or_fallback(found, shown.scientific, shown.taxonomic) == common


def test_tagged_name_of_row_25():
    taxon = resolve_fixture("raw", ROWS[24][2])
    assert naming.names(taxon).tagged == "kingdom Animalia family Formicidae genus Camponotus"


def test_exact_text_fields_row_11():
    shown = naming.names(resolve_fixture("eol", 45511401))
    fields = naming.captions(*shown, "Black-billed Magpie")
    tax = "Animalia Chordata Aves Passeriformes Corvidae Pica hudsonia"
    tag = ("kingdom Animalia phylum Chordata class Aves order Passeriformes family Corvidae genus Pica "
           "species hudsonia")
    assert fields == {
        "scientific_name.txt": "Pica hudsonia",
        "taxonomic_name.txt": tax,
        "common_name.txt": "Black-billed Magpie",
        "sci.txt": "a photo of Pica hudsonia.",
        "com.txt": "a photo of Black-billed Magpie.",
        "taxon.txt": f"a photo of {tax}.",
        "taxonTag.txt": f"a photo of {tag}.",
        "sci_com.txt": "a photo of Pica hudsonia with common name Black-billed Magpie.",
        "taxon_com.txt": f"a photo of {tax} with common name Black-billed Magpie.",
        "taxonTag_com.txt": f"a photo of {tag} with common name Black-billed Magpie.",
    }


def test_exact_text_fields_row_5_without_empty_sentences():
    shown = naming.names(resolve_fixture("bioscan", "4286925.jpg"))
    t = "Animalia Arthropoda Insecta Diptera Cecidomyiidae"
    tag = "kingdom Animalia phylum Arthropoda class Insecta order Diptera family Cecidomyiidae"
    fields = naming.captions(*shown, "")
    # Fix #15: the old `a photo of .` and `a photo of  with common name T.` use the taxonomic name instead.
    assert fields == {
        "scientific_name.txt": "", "taxonomic_name.txt": t, "common_name.txt": t,
        "sci.txt": f"a photo of {t}.", "com.txt": f"a photo of {t}.", "taxon.txt": f"a photo of {t}.",
        "taxonTag.txt": f"a photo of {tag}.", "sci_com.txt": f"a photo of {t} with common name {t}.",
        "taxon_com.txt": f"a photo of {t} with common name {t}.",
        "taxonTag_com.txt": f"a photo of {tag} with common name {t}.",
    }
    assert not any("  " in value or "of ." in value for value in fields.values())


def test_exact_text_fields_row_21():
    shown = naming.names(resolve_fixture("eol", 1000201))
    fields = naming.captions(*shown, "")
    # Fix #16: `Ostrea` everywhere (old: taxonomic `ostrea`, tagged `species ostrea`).
    assert fields["scientific_name.txt"] == fields["taxonomic_name.txt"] == "Ostrea"
    assert fields["taxonTag.txt"] == "a photo of genus Ostrea."
    assert fields["taxon_com.txt"] == "a photo of Ostrea with common name Ostrea."


@pytest.mark.parametrize(("raw", "clean"), [
    ("Xymene huttoni (Murdoch, 1900)", "xymene huttoni"),
    ("Lagophylla ramosissima ssp. ramosissima", "lagophylla ramosissima"),
    ("Lagocheirus araneiformis subsp. parvulus Casey 1913", "lagocheirus araneiformis"),
    ("Echinocereus rigidissimus var. rubrispinus", "echinocereus rigidissimus"),
    ("Collotheca orchidacea Meksuwan, Pholpunthin & Segers, 2013", "collotheca orchidacea"),
    ("Agosia yarrowi Jordan & Evermann", "agosia yarrowi"),
    ("Megacyllene asteca Chevrolat 1860", "megacyllene asteca"),
    ("Partula subangulata Pease, 1870", "partula subangulata"),
    ("Morinda citrifolia L.", "morinda citrifolia"),
    ("Stylidium spinulosum r.br.", "stylidium spinulosum"),
    ("Pellaea boivinii <br > var. boivinii", "pellaea boivinii"),
    ("Pica hudsonia 1823", "pica hudsonia"),  # Fix #11
    ("Abc def _. ghi", "abc def _. ghi"),  # Fix #12: the old ` [A-z]\.` took `_` for a letter and cut here
    ("Abc def ^. ghi", "abc def ^. ghi"),
    ("Megaselia sp. 12ABC", "megaselia sp. 12ABC"),  # Fix #16
])
def test_clean_name(raw, clean):
    assert naming.clean_name(raw) == clean


@pytest.mark.parametrize(("raw", "stripped"), [
    ("<i>Pica</i>", "Pica"), ("<b><i>Pica</i></b> x", "Pica x"), ("a<br>b", "a<br>b"), ("<i>a</b>", "<i>a</b>"),
])
def test_strip_html(raw, stripped):
    assert naming.strip_html(raw) == stripped


@pytest.mark.parametrize(("names_text", "languages", "english"), [
    ("common earthworm, dew-worm", "English", "common earthworm"),
    ("Giant Manta Ray, Manta gigante", "English, Spanish", "Giant Manta Ray"),
    ("Manta gigante, Giant Manta Ray", "Spanish, English", "Giant Manta Ray"),  # Fix #9
    ("Highland Small Rice Rat, Páramo Colilargo", "English, Spanish, French", ""),  # counts disagree
    ("", "", ""),
])
def test_first_english_name(names_text, languages, english):
    assert naming.first_english_name(names_text, languages) == english


@pytest.mark.parametrize(("raw", "shown"), [
    ("Trogi's Bracket (fungus)", "Trogi's Bracket"),
    ("Bob & Alice's moth", "Bob & Alice's moth"),  # Fix #10: the old code made this empty
    ("<i>Great</i>  Blue Heron", "Great Blue Heron"),
])
def test_clean_common_name(raw, shown):
    assert naming.clean_common_name(raw) == shown


def test_itis_first_row_wins():
    mapping = taxonomy.common_names_from_rows({"Pica hudsonia"}, [
        ("Pica", "Pica hudsonia", "Black-billed Magpie", "English"),
        ("Pica", "Pica hudsonia", "American Magpie", "English"),
    ], [], [])
    assert mapping == {"Pica hudsonia": "Black-billed Magpie"}  # Fix #9: the old code kept the last row


def test_class_indices_are_order_free_and_collision_free():
    taxa = [("ab", "c", "", "", "", "", ""), ("a", "bc", "", "", "", "", ""), ("a", "b", "", "", "", "", "")]
    first = taxonomy.class_indices(taxa)
    assert first == taxonomy.class_indices(list(reversed(taxa)))
    # `ab`+`c` and `a`+`bc` concatenate to the same key in the old scheme; here they differ.
    assert first[taxa[0]][1] != first[taxa[1]][1]
    assert first[("a", "b", "", "", "", "", "")][:2] == (0, 0)


def test_unify_binomials_across_sources():
    inat = taxonomy.KeyResult("inat21", (1,), ("animalia", "chordata", "elasmobranchii", "myliobatiformes",
                                                "mobulidae", "mobula", "birostris"))
    eol = taxonomy.KeyResult("eol", (2,), TABLE.upgrade(EOL_INDEX.taxon(49672921))[0])
    unknown_a = taxonomy.KeyResult("eol", (3,), ("animalia", "x", "", "", "", "g", "s"))
    unknown_b = taxonomy.KeyResult("inat21", (4,), ("animalia", "x", "y", "z", "w", "g", "s"))
    taxonomy.unify_binomials([inat, eol, unknown_a, unknown_b], TABLE)
    assert inat.taxon == eol.taxon and inat.taxon[2] == "chondrichthyes"  # Fix #19: ITIS ranks everywhere
    assert unknown_a.taxon == unknown_b.taxon == ("animalia", "x", "y", "z", "w", "g", "s")
    assert any("one binomial" in change for change in inat.changes)


def test_taxon_ids_are_stable():
    assert taxonomy.taxon_id(("animalia",) + ("",) * 6) == taxonomy.taxon_id(("animalia",) + ("",) * 6)
    assert 0 < taxonomy.taxon_id(("a",) * 7) < 2**63


def test_rank_key_with_hyphenated_epithet():
    assert naming.split_rank_key("Plantae-T-M-R-A-Aster-novae-angliae")[5:] == ("Aster", "novae-angliae")
    with pytest.raises(ValueError, match="has 3 ranks"):
        naming.split_rank_key("a-b-c")

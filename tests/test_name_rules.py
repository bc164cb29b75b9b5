"""Authorities, placeholders and the kingdom vocabulary: table-driven, with expectations written by hand from
real EOL, ITIS and Catalogue of Life names (issue 13; docs/differences.md)."""

from __future__ import annotations

import pytest

from etl import naming, taxonomy
from etl.taxonomy import KeyResult

# (name as a reference file writes it, canonical name the pipeline must keep)
AUTHORITY_FORMS = [
    ("Trametes trogii Berk., 1850", "trametes trogii"),
    ("Morus bassanus (Linnaeus, 1758)", "morus bassanus"),
    ("Brassica oleracea (L.) Lam.", "brassica oleracea"),
    ("Nyctibatrachus humayuni Bhaduri & Kripalani, 1955", "nyctibatrachus humayuni"),
    ("Xenopsylla cheopis (Rothschild, 1903)", "xenopsylla cheopis"),
    ("Quercus robur L.", "quercus robur"),
    ("Abies alba Mill.", "abies alba"),
    ("Acer saccharum Marshall", "acer saccharum"),
    ("Homo sapiens Linnaeus, 1758", "homo sapiens"),
    ("Gadus morhua Linnaeus 1758", "gadus morhua"),
    ("Canis lupus familiaris Linnaeus, 1758", "canis lupus familiaris"),
    ("Puccinia graminis Pers. ex Pers.", "puccinia graminis"),
    ("Saccharomyces cerevisiae Meyen ex E.C. Hansen", "saccharomyces cerevisiae"),
    ("Amanita muscaria (L. : Fr.) Lam.", "amanita muscaria"),
    ("Pinus nigra subsp. laricio (Poir.) Maire", "pinus nigra"),
    ("Rosa canina L. var. dumalis Baker", "rosa canina"),
    ("Ficus carica L., 1753", "ficus carica"),
    ("Lethrinus nebulosus (Forsskål, 1775)", "lethrinus nebulosus"),
    ("Xus yus Smith et al., 2001", "xus yus"),
    ("Drosophila melanogaster Meigen, 1830", "drosophila melanogaster"),
    ("Apis mellifera Linnaeus 1758", "apis mellifera"),
    ("Taraxacum officinale F.H.Wigg.", "taraxacum officinale"),
    ("Bellis perennis L.", "bellis perennis"),
    ("Agaricus campestris L. : Fr.", "agaricus campestris"),
    ("Mentha × piperita L.", "mentha × piperita"),
    ("Quercus x bebbiana C.K.Schneid.", "quercus x bebbiana"),
    ("Cyanistes caeruleus (Linnaeus, 1758)", "cyanistes caeruleus"),
    ("Passer domesticus (Linnaeus,1758)", "passer domesticus"),
    ("Carabus nemoralis O.F. Müller, 1764", "carabus nemoralis"),
    ("Aedes aegypti (Linnaeus in Hasselquist, 1762)", "aedes aegypti"),
    ("Hieracium murorum de Candolle", "hieracium murorum"),
    ("Aster amellus van der Berg", "aster amellus"),
    ("Salix alba f. vitellina (L.) Schneid.", "salix alba"),
    ("Trifolium repens var. giganteum Lagr.-Foss.", "trifolium repens"),
    ("Poa annua subsp. annua", "poa annua"),
    ("Lagophylla ramosissima ssp. ramosissima", "lagophylla ramosissima"),
    ("Cladonia rangiferina (L.) F.H. Wigg.", "cladonia rangiferina"),
    ("Russula emetica (Schaeff.) Pers., 1796", "russula emetica"),
    ("Helix pomatia Linnaeus, 1758", "helix pomatia"),
    ("Lumbricus terrestris Linnaeus, 1758", "lumbricus terrestris"),
    ("Trametes Fr.", "trametes"),
    ("Quercus L.", "quercus"),
    ("Asteraceae Bercht. & J.Presl", "asteraceae"),
    ("Megaselia sp. 12ABC", "megaselia sp. 12ABC"),
    ("Megaselia sp. BOLD:AAB1234", "megaselia sp. BOLD:AAB1234"),
    ("Carex cf. flava L.", "carex cf. flava"),
    ("<i>Mobula birostris</i> (Walbaum, 1792)", "mobula birostris"),
    # Lower-cased already (the species slot of a normalised taxon): the debris the old cuts left goes too.
    ("trametes trogii berk., 1850", "trametes trogii"),
    ("abies alba mill.", "abies alba"),
    ("puccinia graminis pers. ex pers.", "puccinia graminis"),
    ("megacyllene asteca chevrolat 1860", "megacyllene asteca"),
]


def test_at_least_forty_forms():
    assert len(AUTHORITY_FORMS) >= 40


@pytest.mark.parametrize(("raw", "canonical"), AUTHORITY_FORMS, ids=[raw for raw, _ in AUTHORITY_FORMS])
def test_authority_is_stripped(raw, canonical):
    assert naming.clean_name(raw) == canonical


@pytest.mark.parametrize(("value", "placeholder"), [
    ("not provided", True), ("Not Provided", True), ("unknown", True), ("Unidentified", True),
    ("Unidentified Fungi", True), ("unidentified insect", True), ("incertae sedis", True),
    ("Incertae Sedis", True), ("Mollusca incertae sedis", True), ("sp.", True), ("spp.", True),
    ("not_classified", True), ("PleaseHelp", True), ("(unidentified)", True), ("unclassified Bacteria", True),
    ("<i>unknown</i>", True),
    ("Quercus", False), ("sp. 12ABC", False), ("Unionidae", False), ("knownia", False), ("", False),
    ("provided", False), ("incertae", False),
])
def test_placeholders(value, placeholder):
    assert naming.is_placeholder(value) is placeholder


@pytest.mark.parametrize(("raw", "taxon"), [
    # A placeholder in any slot is an empty slot; a placeholder name names nothing.
    (("", "", "", "", "", "", "not provided"), ("",) * 7),
    (("", "", "", "", "", "", "Unidentified sp."), ("",) * 7),
    (("Animalia", "Arthropoda", "Insecta", "Diptera", "incertae sedis", "Megaselia", "sp."),
     ("animalia", "arthropoda", "insecta", "diptera", "", "megaselia", "")),
    (("Fungi", "unknown", "", "", "", "", "Trametes trogii Berk., 1850"),
     ("fungi", "", "", "", "", "trametes", "trogii")),
    (("", "", "", "", "", "", "Megaselia sp."), ("", "", "", "", "", "megaselia", "")),
])
def test_placeholders_in_taxa(raw, taxon):
    assert naming.normalise(raw) == taxon


@pytest.mark.parametrize(("provider", "kingdom"), [
    ("Animalia", "animalia"), ("Metazoa", "animalia"), ("Viridiplantae", "plantae"), ("Chloroplastida", "plantae"),
    ("Archaeplastida", "plantae"), ("PLANTAE", "plantae"), ("Fungi", "fungi"), ("Chromista", "chromista"),
    ("Stramenopiles", "chromista"), ("Protozoa", "protozoa"), ("Bacteria", "bacteria"), ("Archaea", "archaea"),
    # Not kingdoms we accept: no kingdom at all.
    ("Protista", ""), ("Orthornavirae", ""), ("Bamfordvirae", ""), ("Shotokuvirae", ""), ("Eukaryota", ""),
    ("Streptophyta", ""), ("", ""),
])
def test_kingdom_vocabulary(provider, kingdom):
    assert naming.accepted_kingdom(provider) == kingdom
    assert naming.normalise([provider, "", "", "", "", "Aus", "bus"])[0] == kingdom


def test_native_kingdoms_are_the_seven():
    natives = [k for k in ("Animalia", "Plantae", "Fungi", "Chromista", "Protozoa", "Bacteria", "Archaea",
                           "Metazoa", "Viridiplantae", "Protista") if naming.is_native_kingdom(k)]
    assert natives == ["Animalia", "Plantae", "Fungi", "Chromista", "Protozoa", "Bacteria", "Archaea"]


# ------------------------------------------------------------------- taxa above species (issue 13, point 5)

@pytest.mark.parametrize(("name", "rank"), [
    ("Ostrea", "genus"), ("Quercus", "genus"), ("Pica", "genus"),
    ("Ostreidae", "family"), ("Corvidae", "family"), ("Felidae ", "family"),
    ("Fagaceae", "family"), ("Rosaceae", "family"),
    # ICN Art. 18.5: the eight family names conserved without -aceae.
    ("Compositae", "family"), ("Gramineae", "family"), ("Leguminosae", "family"), ("Palmae", "family"),
])
def test_uninomial_rank(name, rank):
    assert naming.uninomial_rank(name) == rank


# A small Dynamic Hierarchy: page, rank, canonical name, parent page.
SMALL_DH = [(1, "kingdom", "Metazoa", None), (2, "phylum", "Chordata", 1), (3, "class", "Aves", 2),
            (4, "order", "Passeriformes", 3), (5, "family", "Corvidae", 4), (6, "genus", "Pica", 5)]
CORVID_CHAIN = ("animalia", "chordata", "aves", "passeriformes", "corvidae")


@pytest.mark.parametrize(("scraped", "placed"), [
    # The hierarchy first: a scraped genus or family page hangs under the DH page of that name.
    ("Pica", (*CORVID_CHAIN, "pica", "")),
    ("Corvidae", (*CORVID_CHAIN, "", "")),
    # Not in the hierarchy: the name's form tells its rank; the ranks above are left to the upgrade table.
    ("Ostreidae", ("", "", "", "", "ostreidae", "", "")),
    ("Ostrea", ("", "", "", "", "", "ostrea", "")),
    ("Compositae", ("", "", "", "", "compositae", "", "")),
    # A species under a known genus page (unchanged behaviour).
    ("Pica pica (Linnaeus, 1758)", (*CORVID_CHAIN, "pica", "pica")),
])
def test_genus_and_family_pages_placed_by_the_hierarchy(scraped, placed):
    index = taxonomy.eol_index_from_rows(taxonomy.load_corrections(), SMALL_DH, [(100, scraped)], {100})
    assert index.taxon(100) == placed


def test_family_page_upgraded_through_itis_and_resolver():
    # The resolver knows `Ostrea edulis` in Ostreidae: a family page of that name gets the ranks above it.
    table = taxonomy.upgrade_table_from_rows(
        taxonomy.load_corrections(), [],
        [(1, "Ostrea edulis", "Animalia", "Mollusca", "Bivalvia", "Ostreida", "Ostreidae")])
    family_page = ("", "", "", "", "ostreidae", "", "")
    assert table.upgrade(family_page)[0] == ("animalia", "mollusca", "bivalvia", "ostreida", "ostreidae", "", "")
    genus_page = ("", "", "", "", "", "ostrea", "")
    assert table.upgrade(genus_page)[0] == ("animalia", "mollusca", "bivalvia", "ostreida", "ostreidae", "ostrea", "")


def _result(key: int, taxon: tuple[str, ...]) -> KeyResult:
    return KeyResult("eol", (key,), taxon)


A = ("animalia", "arthropoda", "insecta", "diptera", "phoridae")
B = ("animalia", "arthropoda", "insecta", "hymenoptera", "formicidae")


@pytest.mark.parametrize(("species", "above", "expected"), [
    # Most of the genus's catalogued species agree: their chain fills the genus page.
    ([(*A, "megaselia", "a"), (*A, "megaselia", "b"), (*B, "megaselia", "c")],
     ("", "", "", "", "", "megaselia", ""), (*A, "megaselia", "")),
    # A tie goes to the smallest chain, whatever the order.
    ([(*B, "megaselia", "c"), (*A, "megaselia", "a")], ("", "", "", "", "", "megaselia", ""), (*A, "megaselia", "")),
    # Distinct species count once, however many keys name them.
    ([(*B, "megaselia", "c"), (*B, "megaselia", "c"), (*A, "megaselia", "a"), (*A, "megaselia", "b")],
     ("", "", "", "", "", "megaselia", ""), (*A, "megaselia", "")),
    # A family page takes the chain of the catalogued species of that family.
    ([(*A, "megaselia", "a")], ("", "", "", "", "phoridae", "", ""), (*A, "", "")),
    # Filled slots are kept: only chains agreeing with them count.
    ([(*A, "megaselia", "a"), (*A, "megaselia", "b"), (*B, "megaselia", "c")],
     ("animalia", "arthropoda", "insecta", "hymenoptera", "", "megaselia", ""), (*B, "megaselia", "")),
    # Nothing agrees, or no catalogued species: the taxon stays as it is (the checks report the gap).
    ([(*A, "megaselia", "a")], ("plantae", "", "", "", "", "megaselia", ""),
     ("plantae", "", "", "", "", "megaselia", "")),
    ([(*A, "megaselia", "a")], ("", "", "", "", "", "ostrea", ""), ("", "", "", "", "", "ostrea", "")),
    # Incomplete species do not vote.
    ([("animalia", "", "", "", "", "megaselia", "a")], ("", "", "", "", "", "megaselia", ""),
     ("", "", "", "", "", "megaselia", "")),
])
def test_consensus_of_catalogued_species(species, above, expected):
    results = [_result(n, taxon) for n, taxon in enumerate(species)]
    target = _result(99, above)
    taxonomy.fill_from_catalogued_species([*results, target])
    assert target.taxon == expected
    assert [r.taxon for r in results] == species  # species are never changed
    assert bool(target.changes) == (expected != above)
    if expected != above:
        assert "consensus of" in target.changes[0]

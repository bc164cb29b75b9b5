"""Authorities, placeholders and the kingdom vocabulary: table-driven, with expectations written by hand from
real EOL, ITIS and Catalogue of Life names (issue 13; docs/differences.md)."""

from __future__ import annotations

import pytest

from etl import naming

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

"""The worked examples of naming.md §12, as they appear in each source's files.

tests/test_naming.py resolves these same rows through the naming rules, so the sample collection and the
rule tests can never disagree about what a worked example looks like on disk.
"""

from __future__ import annotations

from typing import NamedTuple

NC = "not_classified"

INAT_FIXTURE_CLASSES = [
    "00000_Animalia_Annelida_Clitellata_Haplotaxida_Lumbricidae_Lumbricus_terrestris",
    "04815_Animalia_Chordata_Aves_Passeriformes_Paridae_Cyanistes_caeruleus",
    "05432_Plantae_Tracheophyta_Magnoliopsida_Ranunculales_Papaveraceae_Papaver_rhoeas",
    "00005_Animalia_Arthropoda_Arachnida_Araneae_Antrodiaetidae_Atypoides_riversi",
    "06010_Plantae_Marchantiophyta_Marchantiopsida_Marchantiales_Marchantiaceae_Marchantia_polymorpha",
]


class BioscanImage(NamedTuple):
    """One BIOSCAN image and the labels of its metadata record (`not_classified` where BIOSCAN has none)."""

    image_file: str
    order: str
    family: str
    genus: str
    species: str


BIOSCAN_FIXTURES = [
    BioscanImage("4286925.jpg", "Diptera", "Cecidomyiidae", NC, NC),
    BioscanImage("5016789.jpg", "Coleoptera", "Dytiscidae", "Hydroporus", "Hydroporus striola"),
    BioscanImage("5335944.jpg", "Coleoptera", "Curculionidae", "Euplatypus", NC),
    BioscanImage("BIOUG68114-B02.jpg", "Hymenoptera", NC, NC, NC),
    BioscanImage("4900531.jpg", "Diptera", "Phoridae", "Megaselia", "Megaselia sp. 12ABC"),
    BioscanImage("3995976.jpg", "Diptera", NC, "Contarinia", "Contarinia nasturtii"),
]

METAZOA, CHORDATA = ("Metazoa", "kingdom"), ("Chordata", "phylum")
# DH chains: (canonicalName, taxonRank[, page id]); a page id of None means the row has no eolID.
EOL_FIXTURE_CHAINS: list[list[tuple]] = [
    [METAZOA, CHORDATA, ("Vertebrata", "subphylum"), ("Aves", "class"), ("Passeriformes", "order"),
     ("Corvidae", "family"), ("Pica", "genus"), ("Pica hudsonia", "species", 45511401)],
    [METAZOA, CHORDATA, ("Elasmobranchii", "class"), ("Myliobatiformes", "order"), ("Mobula", "genus"),
     ("Mobula birostris", "species", 49672921)],
    [("Archaeplastida", "kingdom"), ("Tracheophyta", "phylum"), ("Magnoliopsida", "class"), ("Fagales", "order"),
     ("Fagaceae", "family"), ("Quercus", "genus"), ("Quercus alba", "species", 1151323)],
    [METAZOA, ("Arthropoda", "phylum"), ("Collembola", "order"), ("Entomobryidae", "family"),
     ("Entomobrya", "genus"), ("Entomobrya nivalis", "species", 1000050)],
    [("Trametes", "genus", None), ("Trametes trogii", "species", 1000070)],
    [METAZOA, CHORDATA, ("Charina", "genus"), ("Charina umbratica", "species", 1000090)],
    [METAZOA, ("Hexapoda", ""), ("Leptogaster", "genus"), ("Leptogaster flavipes", "species", 1000100)],
    [METAZOA, CHORDATA, ("Mammalia", "class"), ("Lemuridae", "family"),
     ("Varecia variegata subcincta", "species", 1000110)],
    [METAZOA, CHORDATA, ("Amphibia", "class"), ("Anura", "order"), ("Nyctibatrachus", "genus")],
]
# Written as the original writes them (`f"{page_id},{name}"`, no quoting): authorities bring commas.
EOL_SCRAPED = [
    (333069, "Nyctibatrachus humayuni Bhaduri & Kripalani, 1955"),
    (1000200, "Xenopsylla cheopis (Rothschild, 1903)"),
    (1000201, "Ostrea"),
    (1000202, "<i>Geospiza fuliginosa fuliginosa</i>"),
    (1000203, "Morus bassanus (Linnaeus, 1758)"),
    (1000204, "Abies alba Mill."),
    (1000205, "not provided"),  # a placeholder: the page is unnamed, not genus `Not`
    (1000206, "Unidentified sp."),
    (1000207, "Ostreidae"),  # a family page: its ranks come from the resolver's Ostreidae
    (1000208, "Quercus"),  # a genus page the Dynamic Hierarchy knows: placed under DH's Quercus
    (1000209, "Atypoides"),  # a genus only iNat21's catalogued species place (consensus of that genus)
]
EOL_FIXTURE_PAGES = [45511401, 49672921, 1151323, 1000050, 1000070, 1000090, 1000100, 1000110,
                     333069, 1000200, 1000201, 1000202, 1000203, 1000204, 1000205, 1000206, 1000207,
                     1000208, 1000209]
# Pages with no taxon on purpose (placeholder names): counted as unnamed and left out.
EOL_PLACEHOLDER_PAGES = [1000205, 1000206]


class ItisChain(NamedTuple):
    """A row of ITIS's species-level taxonomy chains: Kingdom … Genus, the binomial, and its common names."""

    kingdom: str
    phylum: str
    cls: str
    order: str
    family: str
    genus: str
    species: str
    vernacular: str
    vernacular_lang: str


ITIS_FIXTURES = [
    ItisChain("Animalia", "Annelida", "Clitellata", "Haplotaxida", "Lumbricidae", "Lumbricus", "Lumbricus terrestris",
              "common earthworm, dew-worm", "English"),
    ItisChain("Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Pica", "Pica hudsonia",
              "Black-billed Magpie", "English"),
    ItisChain("Animalia", "Chordata", "Chondrichthyes", "Myliobatiformes", "Mobulidae", "Mobula", "Mobula birostris",
              "Giant Manta Ray, Manta gigante", "English, Spanish"),
    ItisChain("Plantae", "Tracheophyta", "Magnoliopsida", "Fagales", "Fagaceae", "Quercus", "Quercus alba",
              "white oak", "English"),
    ItisChain("Animalia", "Arthropoda", "Insecta", "Diptera", "Cecidomyiidae", "Contarinia", "Contarinia nasturtii",
              "swede midge", "English"),
    ItisChain("Animalia", "Arthropoda", "Insecta", "Diptera", "Asilidae", "Asilus", "Asilus crabroniformis",
              "hornet robberfly", "English"),
    ItisChain("Animalia", "Chordata", "Reptilia", "Squamata", "Boidae", "Charina", "Charina bottae",
              "northern rubber boa", "English"),
    ItisChain("Animalia", "Chordata", "Amphibia", "Anura", "Nyctibatrachidae", "Nyctibatrachus",
              "Nyctibatrachus major", "", ""),
    ItisChain("Animalia", "Arthropoda", "Insecta", "Hymenoptera", "Formicidae", "Camponotus",
              "Camponotus herculeanus", "Hercules Ant", "English"),
    ItisChain("Animalia", "Arthropoda", "Insecta", "Coleoptera", "Curculionidae", "Euplatypus",
              "Euplatypus parallelus", "", ""),
]
# (name, (kingdom, phylum, class, order, family)) as the Catalogue of Life answers through the resolver.
RESOLVER_FIXTURES = [
    ("Trametes trogii", ("Fungi", "Basidiomycota", "Agaricomycetes", "Polyporales", "Polyporaceae")),
    ("Charina umbratica", ("Metazoa", "Chordata", "Reptilia", "Squamata", "Charinidae")),
    ("Leptogaster flavipes", ("Animalia", "Arthropoda", "Insecta", "Diptera", "Leptogastridae")),
]
# More resolver answers the sample writes (not part of the worked examples, which show the rules without them):
# they complete the scraped and genus pages, and bring NCBI's and a virus realm's classifications.
RESOLVER_SAMPLE_EXTRAS = [
    ("Xenopsylla cheopis", ("Animalia", "Arthropoda", "Insecta", "Siphonaptera", "Pulicidae")),
    ("Ostrea edulis", ("Animalia", "Mollusca", "Bivalvia", "Ostreida", "Ostreidae")),
    ("Geospiza fuliginosa", ("Animalia", "Chordata", "Aves", "Passeriformes", "Thraupidae")),
    ("Varecia variegata", ("Animalia", "Chordata", "Mammalia", "Primates", "Lemuridae")),
    ("Morus bassanus", ("Animalia", "Chordata", "Aves", "Suliformes", "Sulidae")),
    ("Abies alba", ("Plantae", "Tracheophyta", "Pinopsida", "Pinales", "Pinaceae")),
    # NCBI's classification as the resolver returns it for a liverwort iNat21 files under Plantae
    # Marchantiophyta: its kingdom maps to Plantae, but it must not replace iNat21's classification.
    ("Marchantia polymorpha", ("Viridiplantae", "Streptophyta", "Marchantiopsida", "Marchantiales",
                               "Marchantiaceae")),
    # A virus realm for a mismatched name: not a kingdom of the vocabulary, so not used at all.
    ("Papaver rhoeas", ("Orthornavirae", "Pisuviricota", "Pisoniviricetes", "Picornavirales", "Secoviridae")),
]


class InatTaxon(NamedTuple):
    """A species of the iNaturalist DwC-A taxa table, with its English common name ("" if none)."""

    name: str
    kingdom: str
    phylum: str
    cls: str
    order: str
    family: str
    genus: str
    epithet: str
    common: str


INAT_VERNACULAR_FIXTURES = [
    InatTaxon("Lumbricus terrestris", "Animalia", "Annelida", "Clitellata", "Haplotaxida", "Lumbricidae",
              "Lumbricus", "terrestris", "Common Earthworm"),
    InatTaxon("Cyanistes caeruleus", "Animalia", "Chordata", "Aves", "Passeriformes", "Paridae", "Cyanistes",
              "caeruleus", "Eurasian Blue Tit"),
    InatTaxon("Papaver rhoeas", "Plantae", "Tracheophyta", "Magnoliopsida", "Ranunculales", "Papaveraceae",
              "Papaver", "rhoeas", "Common Poppy"),
    InatTaxon("Atypoides riversi", "Animalia", "Arthropoda", "Arachnida", "Araneae", "Antrodiaetidae", "Atypoides",
              "riversi", "California Turret Spider"),
]


class EolVernacular(NamedTuple):
    """A row of EOL's vernacularnames.csv (the columns the sample fills in)."""

    page_id: int
    canonical_form: str
    vernacular_string: str
    language_code: str
    preferred: bool


EOL_VERNACULAR_FIXTURES = [
    EolVernacular(1000050, "Entomobrya nivalis", "Cosmopolitan Springtail", "eng", True),
    EolVernacular(1000070, "<i>Trametes trogii</i>", "Trogi's Bracket (fungus)", "eng", True),
    EolVernacular(1000090, "Charina umbratica", "southern rubber boa", "eng", True),
    EolVernacular(333069, "Nyctibatrachus humayuni", "Humayun's Night Frog", "eng", True),
    EolVernacular(333069, "Nyctibatrachus humayuni", "grenouille de nuit de Humayun", "fre", True),
    EolVernacular(49672921, "<i>Mobula birostris</i>", "Giant manta", "eng", True),
    EolVernacular(1151323, "Quercus alba", "White Oak", "eng", False),
    EolVernacular(45511401, "Pica hudsonia", "American Magpie", "eng", False),
]

"""The reference files the later stages read: EOL's DH taxon.tab, vernacular names and scraped page ids, ITIS
chains, the iNaturalist DwC-A, the resolver's answers and the rare-species lists."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from pathlib import Path

from etl.sampledata.fixtures import (
    EOL_SCRAPED,
    EOL_VERNACULAR_FIXTURES,
    INAT_VERNACULAR_FIXTURES,
    ITIS_FIXTURES,
    RESOLVER_FIXTURES,
    RESOLVER_SAMPLE_EXTRAS,
    InatTaxon,
    ItisChain,
)
from etl.sampledata.species import Species

# The rare-species lists name EOL images by their path on the machine that made them.
RARE_PREFIX = "/data/rare-species/2024-03-20/"


class DynamicHierarchy:
    """Builds DH 2.1 taxon.tab rows, sharing nodes between chains with the same prefix."""

    def __init__(self, next_page: Callable[[], int]) -> None:
        self.rows: list[dict[str, str]] = []
        self.nodes: dict[tuple, tuple[str, str | None]] = {}
        self.next_page = next_page

    def add(self, chain: list[tuple]) -> str | None:
        """Add a chain of (canonicalName, taxonRank[, page id]) steps; return the page id of its last node.

        A step without a page id gets the next one of `next_page`; a page id of None makes a row with no eolID.
        """
        parent_id = ""
        page: str | None = None
        path: tuple = ()
        for step in chain:
            name, rank = step[0], step[1]
            path = (*path, name)
            if path not in self.nodes:
                page_id = step[2] if len(step) > 2 else self.next_page()
                taxon_id = f"EOL-{len(self.rows) + 1:012d}"
                self.rows.append({
                    "taxonID": taxon_id, "source": "sample", "furtherInformationURL": "",
                    "acceptedNameUsageID": "", "parentNameUsageID": parent_id,
                    "scientificName": f"{name} Author, 1900" if rank == "species" else name,
                    "taxonRank": rank, "taxonomicStatus": "accepted", "datasetID": "sample",
                    "canonicalName": name, "authority": "", "eolID": "" if page_id is None else str(page_id),
                    "Landmark": "", "higherClassification": "|".join(path[:-1]),
                })
                self.nodes[path] = (taxon_id, None if page_id is None else str(page_id))
            parent_id, page = self.nodes[path]
        return page


def write(rng: random.Random, root: Path, species: list[Species], taxon_rows: list[dict[str, str]],
          page_species: dict[int, Species], eol_images: dict[int, list[str]]) -> None:
    """Write every reference file under `root`, in the stream order the same seed's bytes depend on."""
    for folder in ("eol/dh21", "itis", "inat/dwca", "resolver", "rarespecies"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    write_taxon_tab(root / "eol" / "dh21" / "taxon.tab", taxon_rows)
    _write_scraped(root / "eol" / "scraped_page_ids.csv")
    _write_vernaculars(rng, root / "eol" / "vernacularnames.csv", page_species)
    _write_itis(rng, root / "itis" / "species_level_taxonomy_chains.csv", species)
    _write_inat_dwca(rng, root / "inat" / "dwca", species)
    _write_resolver(root / "resolver" / "resolved.jsonl")
    _write_rare_species(root / "rarespecies", eol_images, page_species, species)


# A malformed row in every reference file, as real files have them: each must be rejected, the rest loaded.
MALFORMED_CSV_ROW = ["oops"]


def write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",",
              malformed: bool = True) -> None:
    """A CSV with a header row and `\\n` line ends; with `malformed`, a row of too few fields in the middle."""
    if malformed:
        rows = [*rows[: len(rows) // 2], MALFORMED_CSV_ROW, *rows[len(rows) // 2:]]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_scraped(path: Path) -> None:
    """scraped_page_ids.csv as the original writes it: `f"{page_id},{name}"`, unquoted, plus a malformed row."""
    lines = ["page_id,scientific_name", *(f"{page},{name}" for page, name in EOL_SCRAPED), "not-a-page,Quercus"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_taxon_tab(path: Path, rows: list[dict[str, str]]) -> None:
    """DH 2.1's taxon.tab: tab-separated, unquoted, with one synonym row after `rows`."""
    header = ["taxonID", "source", "furtherInformationURL", "acceptedNameUsageID", "parentNameUsageID",
              "scientificName", "taxonRank", "taxonomicStatus", "datasetID", "canonicalName", "authority", "eolID",
              "Landmark", "higherClassification"]
    # A synonym row without eolID (skipped by the reader) and a name with a quote (TSV, quoting off).
    rows = [*rows, {**rows[-1], "taxonID": "EOL-SYN-1", "eolID": "", "taxonomicStatus": "synonym",
                    "canonicalName": 'Pica "hudsonica"'}]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(header) + "\n")
        for row in rows:
            handle.write("\t".join(row[column] for column in header) + "\n")
        handle.write("\t".join({**rows[-1], "taxonID": "EOL-BAD-1", "eolID": "12x"}[c] for c in header) + "\n")


def _write_vernaculars(rng: random.Random, path: Path, page_species: dict[int, Species]) -> None:
    rows = [[str(row.page_id), row.canonical_form, row.vernacular_string, row.language_code, "sample", "",
             "preferred" if row.preferred else ""]
            for row in EOL_VERNACULAR_FIXTURES]
    for page, item in sorted(page_species.items()):
        if item.common and rng.random() < 0.5:
            canonical = f"<i>{item.binomial}</i>" if rng.random() < 0.3 else item.binomial
            rows.append([str(page), canonical, item.common, "eng", "sample", "preferred",
                         "preferred" if rng.random() < 0.7 else ""])
    write_csv(path, ["page_id", "canonical_form", "vernacular_string", "language_code", "resource_name",
                     "is_preferred_by_resource", "is_preferred_by_eol"], rows)


def _write_itis(rng: random.Random, path: Path, species: list[Species]) -> None:
    header = ["hierarchy_string_tsn", "hierarchy_string_names", "terminal_tsn", "terminal_scientific_name",
              "terminal_vernacular", "terminal_vernacular_lang", "hierarchy_string_ranks",
              "Kingdom", "Phylum", "Class", "Order", "Family", "Genus", "Species"]
    entries = list(ITIS_FIXTURES)
    for item in species:
        if rng.random() < 0.4:
            entries.append(ItisChain(*item.ranks[:6], item.binomial, item.common, "English" if item.common else ""))
    rows = []
    for number, entry in enumerate(entries, start=1):
        ranks = list(entry[:7])
        tsns = "-".join(str(100000 + number * 10 + level) for level in range(7))
        rows.append([tsns, "->".join(ranks), str(100000 + number * 10 + 6), entry.species, entry.vernacular,
                     entry.vernacular_lang, "Kingdom->Phylum->Class->Order->Family->Genus->Species", *ranks])
    write_csv(path, header, rows)


def _write_inat_dwca(rng: random.Random, folder: Path, species: list[Species]) -> None:
    taxa_rows, vernacular_rows = [], []
    entries = list(INAT_VERNACULAR_FIXTURES)
    for item in species:
        if item.in_inat:
            entries.append(InatTaxon(item.binomial, *item.ranks, item.common))
    for number, taxon in enumerate(entries, 1):
        taxa_rows.append([str(number), f"https://www.inaturalist.org/taxa/{number}", str(number), "",
                          taxon.kingdom, taxon.phylum, taxon.cls, taxon.order, taxon.family, taxon.genus,
                          taxon.epithet, "", "2023-01-01", taxon.name, "species", ""])
        if taxon.common:
            vernacular_rows.append([str(number), taxon.common, "en", "", "", "sample", "english", "",
                                    "2023-01-01"])
    write_csv(folder / "taxa.csv", ["id", "taxonID", "identifier", "parentNameUsageID", "kingdom", "phylum",
                                    "class", "order", "family", "genus", "specificEpithet",
                                    "infraspecificEpithet", "modified", "scientificName", "taxonRank",
                                    "references"], taxa_rows)
    write_csv(folder / "VernacularNames-english.csv", ["id", "vernacularName", "language", "locality",
                                                        "countryCode", "source", "lexicon", "contributor",
                                                        "created"], vernacular_rows)


def _write_resolver(path: Path) -> None:
    lines = []
    for name, (kingdom, phylum, cls, order, family) in (*RESOLVER_FIXTURES, *RESOLVER_SAMPLE_EXTRAS):
        genus = name.split()[0]
        lines.append({name: {"Catalogue of Life": {"kingdom": kingdom, "phylum": phylum, "class": cls,
                                                  "order": order, "family": family, "genus": genus,
                                                  "species": name}}})
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line) + "\n")
        handle.write('{"Broken line": {"Catalogue of Life": \n')


def _write_rare_species(folder: Path, eol_images: dict[int, list[str]], page_species: dict[int, Species],
                        species: list[Species]) -> None:
    seen = {"Mobula birostris": [RARE_PREFIX + name for name in eol_images.get(49672921, [])[:2]]
            + [RARE_PREFIX + "1056352_EOL-media-269-1325222.jpg"]}
    unseen = {"Animalia-Chordata-Reptilia-Squamata-Boidae-Charina-umbratica":
              [RARE_PREFIX + name for name in eol_images.get(1000090, [])[:2]]}
    # An unseen species that lives in iNat21 (and maybe EOL) too: excluded everywhere by its taxon.
    shared = next((s for s in species if s.in_inat and s.in_eol), None)
    if shared is not None:
        page = next(p for p, s in page_species.items() if s is shared)
        unseen["-".join(shared.ranks)] = [RARE_PREFIX + name for name in eol_images.get(page, [])[:1]]
    # Malformed records, one per list, as hand-edited lists hold them: an empty entry, a key of too few ranks.
    seen["Mobula birostris"].append("")
    unseen["Animalia-Chordata-Elasmobranchii"] = []
    (folder / "seen_in_training.json").write_text(json.dumps(seen, indent=1) + "\n")
    (folder / "unseen_in_training.json").write_text(json.dumps(unseen, indent=1) + "\n")

"""The taxonomy stage: load the reference files, then give every image a taxon and a common name.

`load` reads each reference file into its `ref_*` table (replacing the previous load atomically).
`resolve` works once per distinct naming key — an EOL page, an iNat21 class, a BIOSCAN label — and images are
named by joining on those keys in SQL. The rules are naming.md's, with the fixes listed in
docs/differences.md; the small rule functions live in `etl.naming`, the known corrections in
`etl/data/naming_corrections.json`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, insert, text
from sqlalchemy.engine import Connection, Engine

from etl import bulk
from etl.errors import TolError
from etl.models import ReferenceResource
from etl.naming import (
    RANK_NAMES,
    clean_common_name,
    clean_name,
    first_english_name,
    names,
    normalise,
    strip_html,
)
from etl.sources.bioscan import NOT_CLASSIFIED
from etl.sources.common import sha256_file
from etl.sources.inat21 import parse_class_folder

CORRECTIONS_FILE = Path(__file__).parent / "data" / "naming_corrections.json"
csv.field_size_limit(1 << 24)
Taxon = tuple[str, ...]

# ================================================================================================ loading


def read_table(path: Path, required: tuple[str, ...], delimiter: str = ",",
               quoting: int = csv.QUOTE_MINIMAL) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) of a CSV/TSV file as UTF-8, checking the header has `required` columns."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter, quoting=quoting)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise TolError(f"{path}: header has no column {missing[0]!r}")
        for row in reader:
            if None in row:
                raise TolError(f"{path} line {reader.line_num}: more fields than the header")
            yield reader.line_num, row


def _int_or_error(value: str, path: Path, line: int, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise TolError(f"{path} line {line}: {column} is not a whole number: {value!r}") from None


def _optional_int(value: str, path: Path, line: int, column: str) -> int | None:
    return _int_or_error(value, path, line, column) if value.strip() else None


def _rows_eol_taxa(path: Path):
    # DH is a TSV with stray quotes in names: read it with quoting off (the old code did not; #20).
    for line, row in read_table(path, ("taxonID", "parentNameUsageID", "taxonRank", "canonicalName", "eolID"),
                                delimiter="\t", quoting=csv.QUOTE_NONE):
        yield (line, row["taxonID"], row["parentNameUsageID"] or "", (row["taxonRank"] or "").lower(),
               row["canonicalName"] or "", _optional_int(row["eolID"] or "", path, line, "eolID"))


def _rows_eol_scraped(path: Path):
    for line, row in read_table(path, ("page_id", "scientific_name")):
        yield line, _int_or_error(row["page_id"], path, line, "page_id"), row["scientific_name"] or ""


def _rows_eol_vernaculars(path: Path):
    for line, row in read_table(path, ("canonical_form", "vernacular_string", "language_code",
                                       "is_preferred_by_eol")):
        yield (line, _optional_int(row.get("page_id") or "", path, line, "page_id"), row["canonical_form"] or "",
               row["vernacular_string"] or "", row["language_code"] or "", 1 if row["is_preferred_by_eol"] else 0)


def _rows_itis(path: Path):
    columns = ("Kingdom", "Phylum", "Class", "Order", "Family", "Genus", "Species")
    for line, row in read_table(path, (*columns, "terminal_vernacular", "terminal_vernacular_lang")):
        yield (line, *(row[c] or "" for c in columns), row["terminal_vernacular"] or "",
               row["terminal_vernacular_lang"] or "")


def _rows_inat_taxa(path: Path):
    columns = ("kingdom", "phylum", "class", "order", "family", "genus", "specificEpithet", "scientificName",
               "taxonRank")
    for line, row in read_table(path, ("id", *columns)):
        yield (_int_or_error(row["id"], path, line, "id"), *(row[c] or "" for c in columns))


def _rows_inat_vernaculars(path: Path):
    for line, row in read_table(path, ("id", "vernacularName")):
        yield line, _int_or_error(row["id"], path, line, "id"), row["vernacularName"] or ""


def _rows_resolved(path: Path):
    with open(path, encoding="utf-8") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                outer = json.loads(raw)
                (name, inner), = outer.items()
                (ranks,) = inner.values()
                values = tuple(str(ranks.get(r) or "") for r in ("kingdom", "phylum", "class", "order", "family"))
            except (json.JSONDecodeError, ValueError, AttributeError):
                raise TolError(f"{path} line {line}: expected {{name: {{source: {{kingdom: …}}}}}}") from None
            yield (line, name, *values)


@dataclass(frozen=True)
class Resource:
    """One reference file: the setting naming it, its table and columns, and its row reader."""

    name: str
    setting: str
    table: str
    columns: tuple[str, ...]
    rows: Callable[[Path], Iterator[tuple]]


RESOURCES: tuple[Resource, ...] = (
    Resource("eol_taxa", "eol_taxon_tab", "ref_eol_taxa",
             ("row_no", "taxon_id", "parent_taxon_id", "rank", "canonical_name", "page_id"), _rows_eol_taxa),
    Resource("eol_scraped", "eol_scraped_page_ids", "ref_eol_scraped", ("row_no", "page_id", "scientific_name"),
             _rows_eol_scraped),
    Resource("eol_vernaculars", "eol_vernacular", "ref_eol_vernaculars",
             ("row_no", "page_id", "canonical_form", "vernacular", "language", "preferred"), _rows_eol_vernaculars),
    Resource("itis_chains", "itis_chains", "ref_itis_chains",
             ("row_no", "kingdom", "phylum", "class", "order", "family", "genus", "species", "vernacular",
              "vernacular_lang"), _rows_itis),
    Resource("inat_taxa", "inat_taxa", "ref_inat_taxa",
             ("id", "kingdom", "phylum", "class", "order", "family", "genus", "specific_epithet",
              "scientific_name", "taxon_rank"), _rows_inat_taxa),
    Resource("inat_vernaculars", "inat_vernacular", "ref_inat_vernaculars", ("row_no", "taxon_id", "vernacular"),
             _rows_inat_vernaculars),
    Resource("resolver", "resolver_output", "ref_resolved",
             ("row_no", "name", "kingdom", "phylum", "class", "order", "family"), _rows_resolved),
)


@dataclass
class LoadResult:
    """What `load` did with one resource."""

    name: str
    path: str | None
    rows: int = 0
    status: str = "loaded"


def load(engine: Engine, paths: dict[str, Path | None], bioscan_metadata: Path | None = None) -> list[LoadResult]:
    """Load every reference file given in `paths` (setting name → path); a missing one is reported, not fatal."""
    from etl.catalog import load_bioscan_metadata

    results = []
    for resource in RESOURCES:
        path = paths.get(resource.setting)
        if path is None:
            results.append(LoadResult(resource.name, None, status=f"skipped: {resource.setting} not set"))
            continue
        if not path.is_file():
            results.append(LoadResult(resource.name, str(path), status="skipped: file not found"))
            continue
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DELETE FROM {resource.table}")
            count = bulk.load_rows(connection, resource.table, resource.columns, resource.rows(path))
            _record_resource(connection, resource.name, path, count)
        results.append(LoadResult(resource.name, str(path), count))
    if bioscan_metadata is not None:
        if bioscan_metadata.is_file():
            with engine.begin() as connection:
                count = load_bioscan_metadata(connection, bioscan_metadata)
                _record_resource(connection, "bioscan_metadata", bioscan_metadata, count)
            results.append(LoadResult("bioscan_metadata", str(bioscan_metadata), count))
        else:
            results.append(LoadResult("bioscan_metadata", str(bioscan_metadata), status="skipped: file not found"))
    return results


def _record_resource(connection: Connection, name: str, path: Path, count: int) -> None:
    connection.execute(delete(ReferenceResource).where(ReferenceResource.name == name))
    connection.execute(insert(ReferenceResource).values(name=name, path=str(path), n_rows=count,
                                                        sha256=sha256_file(path)))


# ================================================================================================ upgrade


def _corrections() -> dict:
    return json.loads(CORRECTIONS_FILE.read_text(encoding="utf-8"))


@dataclass
class UpgradeTable:
    """naming.md §5's lookup `key → (ranks, parent)`, plus genus keys (Fix #14).

    Keys are lower-case names for family … kingdom, `("genus", name)` for a genus, and a `(genus, epithet)`
    pair for a species (rank `scientific`).
    """

    entries: dict[object, tuple[tuple[str, ...], object]] = field(default_factory=dict)
    seeded: set[object] = field(default_factory=set)
    conflicts: list[str] = field(default_factory=list)
    row_corrections: list[dict] = field(default_factory=list)

    @classmethod
    def seeded_from(cls, corrections: dict) -> UpgradeTable:
        table = cls(row_corrections=corrections.get("lookup_row_corrections", []))
        for seed in corrections.get("lookup_seeds", []):
            key = tuple(seed["key"]) if isinstance(seed["key"], list) else seed["key"]
            table.entries[key] = (tuple(seed["ranks"]), seed["parent"])
            table.seeded.add(key)
        return table

    def _add(self, key: object, ranks: tuple[str, ...], parent: object, strict: bool, where: str) -> None:
        existing = self.entries.get(key)
        if existing is None:
            self.entries[key] = (ranks, parent)
        elif existing != (ranks, parent) and key not in self.seeded and strict:
            # Fix #14: conflicts are reported. ITIS conflicts no longer abort the run: the first row wins,
            # as it does for the resolver, and the conflict is listed.
            self.conflicts.append(f"{where}: {key} has {existing}, ignored {(ranks, parent)}")

    def add_taxon(self, taxon: Taxon, strict: bool, where: str) -> None:
        """Add the keys of one normalised ITIS row (strict) or resolver line."""
        slots = dict(zip(RANK_NAMES, taxon, strict=True))
        for correction in self.row_corrections:
            if all(slots.get(rank) == value for rank, value in correction["when"].items()):
                slots.update(correction["set"])
        kingdom, phylum, cls, order, family, genus, species = (slots[r] for r in RANK_NAMES)
        self._add((genus, species), ("scientific",), family or None, strict, where)
        if genus:
            self._add(("genus", genus), ("genus",), family or None, strict, where)
        for rank, name, parent in (("family", family, order), ("order", order, cls), ("class", cls, phylum),
                                   ("phylum", phylum, kingdom), ("kingdom", kingdom, None)):
            if name:
                self._add(name, (rank,), parent or None, strict, where)

    def fill(self, slots: dict[str, str], start: object) -> list[str]:
        """Follow `start` up the table, setting ranks; returns the changes made (`rank: old → new`)."""
        changes = []
        seen: set[object] = set()
        name = start
        while name in self.entries and name not in seen:
            seen.add(name)
            ranks, parent = self.entries[name]
            for rank in ranks:
                if rank in ("scientific", "genus"):
                    continue
                if slots[rank] != name:
                    changes.append(f"{rank}: {slots[rank] or '-'} → {name}")
                    slots[rank] = name
            name = parent
        return changes

    def start_point(self, slots: dict[str, str], failed: str | None) -> tuple[object, str] | None:
        """The highest key of the unbroken run of filled slots above the species (naming.md §5)."""
        if failed == "scientific":
            return None
        pair = (slots["genus"], slots["species"])
        candidate: tuple[object, str] = (pair, "scientific")
        if failed == "genus":
            return candidate
        if slots["genus"] and pair not in self.entries:
            # Fix #14: an unknown binomial can still be placed through its genus.
            candidate = (("genus", slots["genus"]), "genus")
        for rank in ("family", "order", "class", "phylum", "kingdom"):
            if rank == failed or not slots[rank]:
                break
            candidate = (slots[rank], rank)
        return candidate

    def upgrade(self, taxon: Taxon) -> tuple[Taxon, list[str]]:
        """Fill the empty higher ranks of an incomplete taxon; a filled taxon is returned as it is."""
        changes: list[str] = []
        failed: str | None = None
        while not all(taxon):
            slots = dict(zip(RANK_NAMES, taxon, strict=True))
            start = self.start_point(slots, failed)
            if start is None:
                break
            key, rank = start
            changes += self.fill(slots, key)
            taxon = normalise([slots[r] for r in RANK_NAMES])
            failed = rank
        return taxon, changes

    def binomial_chain(self, genus: str, species: str) -> dict[str, str] | None:
        """The ranks the table gives a known binomial (Fix #19), or None when it does not know it."""
        if (genus, species) not in self.entries or not species:
            return None
        slots = dict.fromkeys(RANK_NAMES, "")
        slots["genus"], slots["species"] = genus, species
        self.fill(slots, (genus, species))
        return slots


def upgrade_table_from_rows(corrections: dict, itis_rows: Iterable[tuple], resolver_rows: Iterable[tuple]
                            ) -> UpgradeTable:
    """The lookup from ITIS rows `(row_no, K, P, C, O, F, G, Species)` (strict, first wins) and resolver rows
    `(row_no, name, K, P, C, O, F)` (first wins)."""
    table = UpgradeTable.seeded_from(corrections)
    for row_no, *ranks in itis_rows:
        table.add_taxon(normalise(ranks), strict=True, where=f"ITIS row {row_no}")
    for row_no, name, *ranks in resolver_rows:
        genus, _, epithet = name.partition(" ")
        table.add_taxon(normalise([*ranks, genus.lower(), epithet.lower()]), strict=False,
                        where=f"resolver line {row_no}")
    return table


def build_upgrade_table(connection: Connection, corrections: dict) -> UpgradeTable:
    """The lookup from the loaded ITIS and resolver tables."""
    return upgrade_table_from_rows(
        corrections,
        connection.execute(text('SELECT row_no, kingdom, phylum, "class", "order", family, genus, species '
                                "FROM ref_itis_chains ORDER BY row_no")),
        connection.execute(text('SELECT row_no, name, kingdom, phylum, "class", "order", family '
                                "FROM ref_resolved ORDER BY row_no")))


# ================================================================================================ EOL pages


@dataclass
class EolIndex:
    """`page → (rank, value, parent page)` from DH 2.1, the seeds, and the scraped names (naming.md §4)."""

    pages: dict[int, tuple[str, str, int | None]] = field(default_factory=dict)
    binomial_pages: set[int] = field(default_factory=set)

    def taxon(self, page: int) -> Taxon:
        """Walk from `page` to the root, setting each of the seven ranks met (ancestors overwrite)."""
        slots = dict.fromkeys(RANK_NAMES, "")
        binomial: str | None = None
        current: int | None = page
        seen: set[int] = set()
        while current is not None and current in self.pages and current not in seen:
            seen.add(current)
            rank, value, parent = self.pages[current]
            if rank in slots:
                slots[rank] = value
                if rank == "species" and current in self.binomial_pages:
                    binomial = value
            current = parent
        if binomial and slots["species"] == binomial:
            # Fix #13: a DH binomial keeps its genus word unless an ancestor supplies the genus.
            genus_word, epithet = binomial.split(" ", 1)
            if slots["genus"]:
                slots["species"] = epithet
            else:
                slots["genus"], slots["species"] = genus_word, epithet
        return normalise([slots[r] for r in RANK_NAMES])


def eol_index_from_rows(corrections: dict, dh_rows: Iterable[tuple], scraped_rows: Iterable[tuple],
                        wanted_pages: set[int]) -> EolIndex:
    """Index DH rows `(page, rank, canonicalName, parent page)` in file order (first row per page wins, seeds
    first), then scraped `(page, name)` rows for wanted pages not yet indexed."""
    index = EolIndex()
    for seed in corrections.get("eol_page_seeds", []):
        index.pages[seed["page_id"]] = (seed["rank"], seed["value"], seed["parent_page_id"])
    genus_pages: dict[str, int] = {}
    for page, rank, canonical, parent in dh_rows:
        if page in index.pages:
            continue
        words = canonical.split()
        if rank == "species" and len(words) == 2 and canonical[:1].isupper():
            index.binomial_pages.add(page)
        # One shared string per rank name: hundreds of thousands of pages share a dozen ranks.
        index.pages[page] = (sys.intern(rank), canonical.lower(), parent)
        if rank == "genus":
            genus_pages[canonical.lower()] = page
    for page, scientific in scraped_rows:
        if page not in wanted_pages or page in index.pages:
            continue
        name = clean_name(scientific)
        words = name.split()
        if not words:
            continue
        if len(words) == 1:
            # Fix #13/#16: a one-word name is a genus (`Ostrea`), not an epithet.
            index.pages[page] = ("genus", words[0], None)
            continue
        # Fix #13: the genus word is kept even when DH does not know the genus; the genus page, when
        # known, supplies the higher ranks.
        index.pages[page] = ("species", name, genus_pages.get(words[0]))
    return index


DH_ROWS_OF_PAGES = """
    SELECT c.row_no, c.page_id, c.rank, c.canonical_name, p.page_id
    FROM dh_pages_wanted AS w
    JOIN ref_eol_taxa AS c ON c.page_id = w.page_id
    LEFT JOIN ref_eol_taxa AS p ON p.taxon_id = c.parent_taxon_id AND p.page_id IS NOT NULL"""


def build_eol_index(connection: Connection, corrections: dict, wanted_pages: set[int]) -> EolIndex:
    """The EOL index for `wanted_pages`, from the loaded DH and scraped-name tables.

    Gives the same taxa as indexing every DH row, but reads only the rows that a walk from a wanted page can
    meet: the rows of the wanted pages, of the genus pages their scraped names may hang from, and of every
    ancestor of these. The real DH has about 2.5M rows; holding them all in Python cost about 1 GB.
    Must run inside a transaction (the level table is dropped at commit on PostgreSQL).
    """
    scraped = [(page, name) for page, name in connection.execute(text(
        "SELECT page_id, scientific_name FROM ref_eol_scraped ORDER BY row_no")) if page in wanted_pages]
    # The genus word of each scraped species name, as eol_index_from_rows reads it.
    genus_words = {words[0] for words in (clean_name(name).split() for _, name in scraped) if len(words) > 1}
    # Every page with a genus row of one of those names: which of them is the genus page is decided by
    # eol_index_from_rows, from all the rows of these pages in file order.
    genus_pages = {page for page, canonical in connection.execute(text(
        "SELECT page_id, canonical_name FROM ref_eol_taxa WHERE rank = 'genus' AND page_id IS NOT NULL"))
        if canonical.lower() in genus_words}
    seed_parents = {seed["page_id"]: seed["parent_page_id"] for seed in corrections.get("eol_page_seeds", [])}
    bulk.create_temp_table(connection, "dh_pages_wanted", [("page_id", "BIGINT")])
    rows: list[tuple] = []
    needed: set[int] = set()
    frontier = set(wanted_pages) | genus_pages
    while frontier:
        needed |= frontier
        parents = {seed_parents[page] for page in frontier if page in seed_parents}
        # One level of the walk per query, through a table of the level's pages: a few levels in all.
        connection.exec_driver_sql("DELETE FROM dh_pages_wanted")
        bulk.load_rows(connection, "dh_pages_wanted", ("page_id",),
                       ((page,) for page in frontier if page not in seed_parents))
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE dh_pages_wanted")
        level = sorted(connection.exec_driver_sql(DH_ROWS_OF_PAGES).all(), key=lambda row: row[0])
        first_seen: set[int] = set()
        for row in level:
            if row[1] not in first_seen:  # only a page's first row gives its parent (first row wins)
                first_seen.add(row[1])
                parents.add(row[4])
        rows += level
        frontier = {page for page in parents if page is not None and page not in needed}
    rows.sort(key=lambda row: row[0])
    return eol_index_from_rows(corrections, (row[1:] for row in rows), scraped, wanted_pages)


# ================================================================================================ resolve


@dataclass
class KeyResult:
    """The taxon resolved for one naming key of one source."""

    source: str
    key: tuple
    taxon: Taxon | None
    reason: str | None = None
    changes: list[str] = field(default_factory=list)


def taxon_id(taxon: Taxon) -> int:
    """A stable 63-bit id of a taxon, the same on every database and in every run."""
    digest = hashlib.sha256("\x1f".join(taxon).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _bioscan_taxon(order: str, family: str, genus: str, species: str) -> Taxon:
    values = ["" if v == NOT_CLASSIFIED else v for v in (order, family, genus, species)]
    return normalise(["Animalia", "Arthropoda", "Insecta", *values])


def unify_binomials(results: list[KeyResult], table: UpgradeTable) -> None:
    """Fix #19: give every occurrence of a binomial one set of higher ranks, whatever its source.

    A binomial the ITIS/resolver table knows takes that table's ranks; otherwise the most complete variant
    wins, then the source order iNat21, EOL, BIOSCAN, then the smallest (so the choice is order-free).
    """
    source_rank = {"inat21": 0, "eol": 1, "bioscan": 2}
    variants: dict[tuple[str, str], list[tuple]] = {}
    for result in results:
        if result.taxon and result.taxon[5] and result.taxon[6]:
            taxon = result.taxon
            completeness = sum(1 for v in taxon if v)
            variants.setdefault((taxon[5], taxon[6]), []).append(
                (-completeness, source_rank[result.source], taxon))
    chosen: dict[tuple[str, str], Taxon] = {}
    for (genus, species), options in variants.items():
        known = table.binomial_chain(genus, species)
        if known and all(known.values()):
            chosen[(genus, species)] = normalise([known[r] for r in RANK_NAMES])
        else:
            chosen[(genus, species)] = min(options)[2]
    for result in results:
        if result.taxon and result.taxon[5] and result.taxon[6]:
            best = chosen[(result.taxon[5], result.taxon[6])]
            if best != result.taxon:
                result.changes += [f"{rank}: {old or '-'} → {new or '-'} (one binomial, one taxon)"
                                   for rank, old, new in zip(RANK_NAMES, result.taxon, best, strict=True)
                                   if old != new]
                result.taxon = best


def class_indices(taxa: list[Taxon]) -> dict[Taxon, tuple[int, ...]]:
    """Fix #17: per rank, the dense rank of the taxon's prefix (kingdom … that rank) among all prefixes,
    sorted as tuples: independent of load order, and prefixes never collide (no concatenation)."""
    per_tier: list[dict[tuple, int]] = []
    for tier in range(7):
        prefixes = sorted({t[: tier + 1] for t in taxa})
        per_tier.append({prefix: number for number, prefix in enumerate(prefixes)})
    return {t: tuple(per_tier[tier][t[: tier + 1]] for tier in range(7)) for t in taxa}


def common_names_from_rows(wanted: set[str], itis_rows: Iterable[tuple], inat_rows: Iterable[tuple],
                           eol_rows: Iterable[tuple]) -> dict[str, str]:
    """`scientific name → common name` for the names in `wanted`, by naming.md §6's priority (with fixes).

    `itis_rows`: (Genus, Species binomial, terminal_vernacular, terminal_vernacular_lang);
    `inat_rows`: (genus, specificEpithet, scientificName, vernacularName) of species/variety taxa;
    `eol_rows`: (canonical_form, vernacular_string, language_code, preferred) in file order.
    Earlier sources win; within a source the first row wins.
    """
    found: dict[str, str] = {}

    def offer(key: str, value: str) -> None:
        if key in wanted and value and key not in found:
            found[key] = value

    for genus, species, vernacular, languages in itis_rows:
        taxon = normalise(["", "", "", "", "", genus, species])
        offer(names(taxon).scientific, first_english_name(vernacular, languages))  # first row wins (Fix #9)
    for genus, epithet, scientific, vernacular in inat_rows:
        offer(names(normalise(["", "", "", "", "", genus, epithet])).scientific, vernacular)
        offer(scientific, vernacular)
    eol = [row for row in eol_rows if row[2] == "eng"]
    for preferred_only in (True, False):
        for canonical, vernacular, _, preferred in eol:
            if preferred or not preferred_only:
                offer(strip_html(canonical).strip(), clean_common_name(vernacular))
    return found


def common_names(connection: Connection, wanted: set[str]) -> dict[str, str]:
    """`common_names_from_rows` over the loaded reference tables."""
    return common_names_from_rows(
        wanted,
        connection.execute(text(
            "SELECT genus, species, vernacular, vernacular_lang FROM ref_itis_chains ORDER BY row_no")),
        connection.execute(text("""
            SELECT t.genus, t.specific_epithet, t.scientific_name, v.vernacular
            FROM ref_inat_taxa AS t JOIN ref_inat_vernaculars AS v ON v.taxon_id = t.id
            WHERE t.taxon_rank IN ('species', 'variety') AND v.vernacular <> ''
            ORDER BY v.row_no""")),
        connection.execute(text("SELECT canonical_form, vernacular, language, preferred FROM ref_eol_vernaculars "
                                "WHERE language = 'eng' ORDER BY row_no")))


@dataclass
class ResolveSummary:
    """Counts of one `resolve` run."""

    keys: dict[str, int] = field(default_factory=dict)
    unnamed_keys: dict[str, int] = field(default_factory=dict)
    taxa: int = 0
    named_images: int = 0
    unnamed_images: int = 0
    upgraded_keys: int = 0
    conflicts: list[str] = field(default_factory=list)
    missing_resources: list[str] = field(default_factory=list)


def resolve(engine: Engine) -> ResolveSummary:
    """Name every catalogued image; see the module docstring."""
    corrections = _corrections()
    summary = ResolveSummary()
    with engine.begin() as connection:
        loaded = {name for (name,) in connection.execute(text("SELECT name FROM ref_resources"))}
        summary.missing_resources = [r.name for r in RESOURCES if r.name not in loaded]
        table = build_upgrade_table(connection, corrections)
        summary.conflicts = table.conflicts
        results = _resolve_keys(connection, table, corrections)
        unify_binomials(results, table)
        taxa = sorted({r.taxon for r in results if r.taxon})
        common = common_names(connection, {names(t).scientific for t in taxa})
        _write_taxa(connection, taxa, common)
        _write_keys(connection, results)
        _name_images(connection)
        for result in results:
            summary.keys[result.source] = summary.keys.get(result.source, 0) + 1
            if result.taxon is None:
                summary.unnamed_keys[result.source] = summary.unnamed_keys.get(result.source, 0) + 1
            if result.changes:
                summary.upgraded_keys += 1
        summary.taxa = len(taxa)
        counts = connection.execute(text("""
            SELECT SUM(CASE WHEN taxon_id IS NOT NULL THEN 1 ELSE 0 END),
                   SUM(CASE WHEN taxon_id IS NULL THEN 1 ELSE 0 END)
            FROM images WHERE status = 'present'""")).one()
        summary.named_images, summary.unnamed_images = int(counts[0] or 0), int(counts[1] or 0)
    return summary


def _resolve_keys(connection: Connection, table: UpgradeTable, corrections: dict) -> list[KeyResult]:
    results: list[KeyResult] = []
    for cls_num, cls_name in connection.execute(text(
            "SELECT DISTINCT inat21_cls_num, inat21_cls_name FROM images WHERE source = 'inat21' "
            "ORDER BY inat21_cls_num")):
        ranks = parse_class_folder(f"{cls_num:05d}_{cls_name}").ranks
        taxon = normalise(ranks)  # iNat21 taxa are complete; they are not upgraded (naming.md §4)
        results.append(KeyResult("inat21", (cls_num,), taxon if any(taxon) else None,
                                 None if any(taxon) else "iNat21 class folder names no rank"))
    for label in connection.execute(text("""
            SELECT DISTINCT m."order", m.family, m.genus, m.species
            FROM images AS i JOIN bioscan_metadata AS m ON m.image_file = i.bioscan_filename
            WHERE i.source = 'bioscan' ORDER BY 1, 2, 3, 4""")):
        taxon, changes = table.upgrade(_bioscan_taxon(*label))
        results.append(KeyResult("bioscan", tuple(label), taxon, None, changes))
    pages = {page for (page,) in connection.execute(text(
        "SELECT DISTINCT eol_page_id FROM images WHERE source = 'eol'"))}
    index = build_eol_index(connection, corrections, pages)
    for page in sorted(pages):
        taxon = index.taxon(page)
        if not any(taxon):
            results.append(KeyResult("eol", (page,), None, f"EOL page {page} has no taxon in the Dynamic "
                                                           "Hierarchy or the scraped names"))
            continue
        taxon, changes = table.upgrade(taxon)
        results.append(KeyResult("eol", (page,), taxon, None, changes))
    return results


def _write_taxa(connection: Connection, taxa: list[Taxon], common: dict[str, str]) -> None:
    indices = class_indices(taxa)
    bulk.create_temp_table(connection, "taxa_stage", [
        ("id", "BIGINT"), *((r, "TEXT") for r in RANK_NAMES),
        ("scientific_name", "TEXT"), ("taxonomic_name", "TEXT"), ("tagged_name", "TEXT"), ("common_name", "TEXT"),
        *((f"class_index_{r}", "INTEGER") for r in RANK_NAMES)])
    def rows():  # streamed: a list of every taxon's row would double the stage's peak memory
        for taxon in taxa:
            shown = names(taxon)
            yield (taxon_id(taxon), *taxon, shown.scientific, shown.taxonomic, shown.tagged,
                   common.get(shown.scientific, ""), *indices[taxon])

    columns = ("id", *RANK_NAMES, "scientific_name", "taxonomic_name", "tagged_name", "common_name",
               *(f"class_index_{r}" for r in RANK_NAMES))
    bulk.load_rows(connection, "taxa_stage", columns, rows())
    quoted = ", ".join(f'"{c}"' for c in columns)
    # Replace the taxa wholesale: names and class indices depend on the whole set.
    for table in ("names_eol_pages", "names_inat21_classes", "names_bioscan_labels"):
        connection.exec_driver_sql(f"DELETE FROM {table}")
    connection.exec_driver_sql("DELETE FROM taxa")
    connection.exec_driver_sql(f"INSERT INTO taxa ({quoted}) SELECT {quoted} FROM taxa_stage")


def _write_keys(connection: Connection, results: list[KeyResult]) -> None:
    def row(result: KeyResult) -> tuple:
        return (*result.key, taxon_id(result.taxon) if result.taxon else None, result.reason,
                "; ".join(result.changes) or None)

    for source, table, key_columns in (("eol", "names_eol_pages", ("page_id",)),
                                       ("inat21", "names_inat21_classes", ("cls_num",)),
                                       ("bioscan", "names_bioscan_labels", ("order", "family", "genus", "species"))):
        bulk.load_rows(connection, table, (*key_columns, "taxon_id", "unnamed_reason", "changes"),
                       (row(r) for r in results if r.source == source))


def _name_images(connection: Connection) -> None:
    # Fresh statistics, or the planner joins 10M images to just-loaded tables it believes empty.
    for table in ("names_eol_pages", "names_inat21_classes", "names_bioscan_labels", "bioscan_metadata", "taxa"):
        connection.exec_driver_sql(f"ANALYZE {table}")
    # Only rows whose name changed are written: re-resolving an unchanged catalog rewrites no image.
    changed = ("(COALESCE(images.taxon_id, -1) <> COALESCE(n.taxon_id, -1) "
               "OR COALESCE(images.unnamed_reason, '') <> COALESCE(n.unnamed_reason, ''))")
    connection.exec_driver_sql(f"""
        UPDATE images SET taxon_id = n.taxon_id, unnamed_reason = n.unnamed_reason
        FROM names_eol_pages AS n
        WHERE images.source = 'eol' AND n.page_id = images.eol_page_id AND {changed}""")
    connection.exec_driver_sql(f"""
        UPDATE images SET taxon_id = n.taxon_id, unnamed_reason = n.unnamed_reason
        FROM names_inat21_classes AS n
        WHERE images.source = 'inat21' AND n.cls_num = images.inat21_cls_num AND {changed}""")
    connection.exec_driver_sql(f"""
        UPDATE images SET taxon_id = n.taxon_id, unnamed_reason = n.unnamed_reason
        FROM bioscan_metadata AS m
        JOIN names_bioscan_labels AS n ON n."order" = m."order" AND n.family = m.family
             AND n.genus = m.genus AND n.species = m.species
        WHERE images.source = 'bioscan' AND m.image_file = images.bioscan_filename AND {changed}""")
    connection.exec_driver_sql("""
        UPDATE images SET unnamed_reason = 'no BIOSCAN metadata record for this image'
        WHERE source = 'bioscan' AND taxon_id IS NULL AND unnamed_reason IS NULL""")
    connection.exec_driver_sql("ANALYZE images")
    # An image whose key no longer resolves (e.g. a BIOSCAN record dropped from the metadata) loses its name.
    connection.exec_driver_sql("""
        UPDATE images SET taxon_id = NULL, unnamed_reason = 'its naming key no longer resolves'
        WHERE taxon_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM taxa AS t WHERE t.id = images.taxon_id)""")


# ================================================================================================ checks


@dataclass
class CheckResult:
    """One quality check: its name, what it tests, the number of hits and a few example rows."""

    name: str
    title: str
    count: int
    columns: list[str]
    examples: list[tuple]


def check(engine: Engine, examples: int = 5) -> list[CheckResult]:
    """Run every `sql/checks/*.sql` query; each file's first comment line is its title."""
    from etl.db import SQL_DIR

    results = []
    with engine.connect() as connection:
        for path in sorted((SQL_DIR / "checks").glob("*.sql")):
            sql = path.read_text(encoding="utf-8")
            title = sql.splitlines()[0].lstrip("- ").strip()
            if connection.dialect.paramstyle in ("format", "pyformat"):
                sql = sql.replace("%", "%%")
            result = connection.exec_driver_sql(sql)
            rows = result.all()
            results.append(CheckResult(path.stem, title, len(rows), list(result.keys()),
                                       [tuple(r) for r in rows[:examples]]))
    return results

"""EOL pages placed in the Dynamic Hierarchy (DH 2.1), the seeded pages and the scraped names (naming.md §4)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl import bulk
from etl.naming import RANK_NAMES, clean_name, is_placeholder, normalise, uninomial_rank
from etl.sources.common import Taxon


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
    family_pages: dict[str, int] = {}
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
        elif rank == "family":
            family_pages[canonical.lower()] = page
    for page, scientific in scraped_rows:
        if page not in wanted_pages or page in index.pages:
            continue
        name = clean_name(scientific)
        words = name.split()
        if not words or is_placeholder(name):  # `not provided` names nothing (not genus `Not`)
            continue
        if len(words) == 1:
            # Fix #13/#16: a one-word name is a genus (`Ostrea`) or a family (`Ostreidae`), never an epithet.
            # The hierarchy places it first: under the DH page of that genus or family, whose ancestors give
            # its higher ranks; otherwise its ending tells the rank, and the upgrade table fills above it.
            word = words[0]
            if word in genus_pages:
                index.pages[page] = ("genus", word, genus_pages[word])
            elif word in family_pages:
                index.pages[page] = ("family", word, family_pages[word])
            else:
                index.pages[page] = (uninomial_rank(word), word, None)
            continue
        # Fix #13: the genus word is kept even when DH does not know the genus; the genus page, when
        # known, supplies the higher ranks.
        index.pages[page] = ("species", name, genus_pages.get(words[0]))
    return index


class DhRow(NamedTuple):
    """A DH row met on a walk: its place in the file, its page, rank and name, and its parent's page."""

    row_no: int
    page_id: int
    rank: str
    canonical_name: str
    parent_page_id: int | None


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
    # The genus word of each scraped name (a one-word name may be a genus or a family), as
    # eol_index_from_rows reads it.
    scraped_words = [words for words in (clean_name(name).split() for _, name in scraped) if words]
    genus_words = {words[0] for words in scraped_words}
    family_words = {words[0] for words in scraped_words if len(words) == 1}
    # Every page with a genus (or, for one-word names, family) row of one of those names: which of them is
    # the page a scraped name hangs from is decided by eol_index_from_rows, from all their rows in file order.
    genus_pages = {page for page, rank, canonical in connection.execute(text(
        "SELECT page_id, rank, canonical_name FROM ref_eol_taxa "
        "WHERE rank IN ('genus', 'family') AND page_id IS NOT NULL"))
        if canonical.lower() in (genus_words if rank == "genus" else family_words)}
    seed_parents = {seed["page_id"]: seed["parent_page_id"] for seed in corrections.get("eol_page_seeds", [])}
    bulk.create_temp_table(connection, "dh_pages_wanted", [("page_id", "BIGINT")])
    rows: list[DhRow] = []
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
        level = sorted((DhRow(*row) for row in connection.exec_driver_sql(DH_ROWS_OF_PAGES)),
                       key=lambda row: row.row_no)
        first_seen: set[int] = set()
        for row in level:
            if row.page_id not in first_seen:  # only a page's first row gives its parent (first row wins)
                first_seen.add(row.page_id)
                parents.add(row.parent_page_id)
        rows += level
        frontier = {page for page in parents if page is not None and page not in needed}
    rows.sort(key=lambda row: row.row_no)
    return eol_index_from_rows(corrections, ((row.page_id, row.rank, row.canonical_name, row.parent_page_id)
                                             for row in rows), scraped, wanted_pages)

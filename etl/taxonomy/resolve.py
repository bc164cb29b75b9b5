"""Resolving names: each source's naming keys get a taxon, binomials are unified across sources, and the
taxa (with common names and class indices), the names tables and the images' names are written."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from etl import bulk, db, sources
from etl.naming import (
    RANK_NAMES,
    clean_common_name,
    first_english_name,
    names,
    normalise,
    strip_html,
)
from etl.progress import Progress
from etl.sources.common import KeyResult, Taxon
from etl.taxonomy.corrections import load_corrections
from etl.taxonomy.eol_index import build_eol_index
from etl.taxonomy.references import RESOURCES
from etl.taxonomy.upgrade import UpgradeTable, build_upgrade_table

_GENUS, _SPECIES = RANK_NAMES.index("genus"), RANK_NAMES.index("species")


def taxon_id(taxon: Taxon) -> int:
    """A stable 63-bit id of a taxon, the same on every database and in every run."""
    digest = hashlib.sha256("\x1f".join(taxon).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def binomial(taxon: Taxon | None) -> tuple[str, str] | None:
    """(genus, epithet) of a taxon that names both, else None."""
    if not taxon:
        return None
    genus, species = taxon[_GENUS], taxon[_SPECIES]
    return (genus, species) if genus and species else None


def unify_binomials(results: list[KeyResult], table: UpgradeTable) -> None:
    """Fix #19: give every occurrence of a binomial one set of higher ranks, whatever its source.

    A binomial the ITIS/resolver table knows takes that table's ranks; otherwise the most complete variant
    wins, then the sources' order (iNat21, EOL, BIOSCAN), then the smallest (so the choice is order-free).
    The table's ranks never replace a complete source classification when they come from a provider whose
    kingdom is outside the vocabulary (`foreign`: NCBI's `Viridiplantae Streptophyta …`).
    """
    variants: dict[tuple[str, str], list[tuple]] = {}
    for result in results:
        taxon, pair = result.taxon, binomial(result.taxon)
        if taxon is not None and pair is not None:
            completeness = sum(1 for v in taxon if v)
            variants.setdefault(pair, []).append((-completeness, sources.by_name(result.source).ORDER, taxon))
    chosen: dict[tuple[str, str], Taxon] = {}
    for (genus, species), options in variants.items():
        known = table.binomial_chain(genus, species)
        complete_here = min(options)[0] == -len(RANK_NAMES)
        if known and all(known.values()) and not ((genus, species) in table.foreign and complete_here):
            chosen[(genus, species)] = normalise([known[r] for r in RANK_NAMES])
        else:
            chosen[(genus, species)] = min(options)[2]
    for result in results:
        taxon, pair = result.taxon, binomial(result.taxon)
        if taxon is not None and pair is not None and chosen[pair] != taxon:
            best = chosen[pair]
            result.changes += [f"{rank}: {old or '-'} → {new or '-'} (one binomial, one taxon)"
                               for rank, old, new in zip(RANK_NAMES, taxon, best, strict=True) if old != new]
            result.taxon = best


_ABOVE_SPECIES = (_GENUS, RANK_NAMES.index("family"))  # the ranks a taxon above species may end at


def fill_from_catalogued_species(results: list[KeyResult]) -> None:
    """Give a genus- or family-level taxon the ranks above it that neither the hierarchy nor ITIS / the
    resolver gave, from the consensus of the catalogued species of that genus (family).

    The consensus is the chain of higher ranks most of those species share (distinct species taxa count once;
    a tie goes to the smallest chain, so the choice does not depend on order). Only empty slots are filled,
    and only from chains that agree with the slots already filled; a taxon no catalogued species explains is
    left as it is, for `tol taxa check` to report.
    """
    species_taxa = {r.taxon for r in results if r.taxon and r.taxon[_SPECIES] and all(r.taxon[:_SPECIES])}
    chains: dict[tuple[int, str], dict[tuple[str, ...], int]] = {}
    for known in species_taxa:
        for level in _ABOVE_SPECIES:
            counts = chains.setdefault((level, known[level]), {})
            counts[known[:level]] = counts.get(known[:level], 0) + 1
    for result in results:
        taxon = result.taxon
        if taxon is None or taxon[_SPECIES]:
            continue
        level = max((i for i, value in enumerate(taxon) if value), default=-1)
        if level not in _ABOVE_SPECIES or all(taxon[:level]):
            continue
        agreeing = [(-count, chain) for chain, count in chains.get((level, taxon[level]), {}).items()
                    if all(not have or have == want for have, want in zip(taxon[:level], chain, strict=True))]
        if not agreeing:
            continue
        count, chain = min(agreeing)
        filled = normalise([*chain, *taxon[level:]])
        result.changes += [f"{rank}: - → {new} (consensus of {-count} catalogued species of {RANK_NAMES[level]} "
                           f"{taxon[level]})" for rank, old, new in zip(RANK_NAMES, taxon, filled, strict=True)
                           if old != new]
        result.taxon = filled


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

    def lines(self) -> list[str]:
        """What `tol taxa resolve` prints: missing references, keys per source, totals, the first conflicts."""
        out = [f"warning: reference {name} not loaded; naming without it" for name in self.missing_resources]
        out += [f"{source}: {count} keys, {self.unnamed_keys.get(source, 0)} without a taxon"
                for source, count in sorted(self.keys.items())]
        out.append(f"{self.taxa} taxa; {self.named_images} images named, {self.unnamed_images} not; "
                   f"{self.upgraded_keys} keys upgraded or unified (see the `changes` columns of names_*)")
        out += [f"conflict: {conflict}" for conflict in self.conflicts[:10]]
        return out


@dataclass
class _Lookups:
    """The taxonomy's lookups, as sources resolving their keys see them (etl.sources.common.NameLookups)."""

    connection: Connection
    table: UpgradeTable
    corrections: dict

    def upgrade(self, taxon: Taxon) -> tuple[Taxon, list[str]]:
        return self.table.upgrade(taxon)

    def eol_page_taxa(self, pages: set[int]) -> Callable[[int], Taxon]:
        return build_eol_index(self.connection, self.corrections, pages).taxon


def resolve(engine: Engine, *, progress: bool = False) -> ResolveSummary:
    """Name every catalogued image: each source resolves its distinct naming keys, binomials are unified across
    sources, and images join their key's taxon in SQL. With `progress`, its steps are shown on stderr."""
    corrections = load_corrections()
    summary = ResolveSummary()
    total_steps = 5 + len(sources.SOURCES)  # upgrade table, each source, unify, taxa, keys, images
    with engine.begin() as connection, Progress(total_steps, "steps", "taxa resolve", enabled=progress) as steps:
        # Two resolves at once take turns: the second waits, then redoes the naming over the first's result.
        db.take_turns(connection, "taxa resolve")
        loaded = {name for (name,) in connection.execute(text("SELECT name FROM ref_resources"))}
        summary.missing_resources = [r.name for r in RESOURCES if r.name not in loaded]
        table = build_upgrade_table(connection, corrections)
        summary.conflicts = table.conflicts
        lookups = _Lookups(connection, table, corrections)
        steps.advance()
        results = []
        for source in sources.SOURCES:
            results += source.resolve_keys(connection, lookups)
            steps.advance()
        unify_binomials(results, table)
        fill_from_catalogued_species(results)
        taxa = sorted({r.taxon for r in results if r.taxon})
        common = common_names(connection, {names(t).scientific for t in taxa})
        for result in results:  # after the reference files, the sources' own common names, in source order
            if result.taxon and result.common_name:
                common.setdefault(names(result.taxon).scientific, result.common_name)
        steps.advance()
        _write_taxa(connection, taxa, common)
        steps.advance()
        _write_keys(connection, results)
        steps.advance()
        _name_images(connection)
        steps.advance()
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


def _write_taxa(connection: Connection, taxa: list[Taxon], common: dict[str, str]) -> None:
    """Replace the `taxa` table with `taxa`, their display and common names and class indices (the names
    tables, which refer to it, are emptied)."""
    indices = class_indices(taxa)
    bulk.create_temp_table(connection, "taxa_stage", [
        ("id", "BIGINT"), *((r, "TEXT") for r in RANK_NAMES),
        ("scientific_name", "TEXT"), ("taxonomic_name", "TEXT"), ("tagged_name", "TEXT"), ("common_name", "TEXT"),
        *((f"class_index_{r}", "INTEGER") for r in RANK_NAMES)])

    def rows() -> Iterator[tuple]:  # streamed: a list of every taxon's row would double the stage's peak memory
        for taxon in taxa:
            shown = names(taxon)
            yield (taxon_id(taxon), *taxon, shown.scientific, shown.taxonomic, shown.tagged,
                   common.get(shown.scientific, ""), *indices[taxon])

    columns = ("id", *RANK_NAMES, "scientific_name", "taxonomic_name", "tagged_name", "common_name",
               *(f"class_index_{r}" for r in RANK_NAMES))
    bulk.load_rows(connection, "taxa_stage", columns, rows())
    quoted = ", ".join(f'"{c}"' for c in columns)
    # Replace the taxa wholesale: names and class indices depend on the whole set.
    for source in sources.SOURCES:
        connection.exec_driver_sql(f"DELETE FROM {source.NAMES.table}")
    connection.exec_driver_sql("DELETE FROM taxa")
    connection.exec_driver_sql(f"INSERT INTO taxa ({quoted}) SELECT {quoted} FROM taxa_stage")


def _write_keys(connection: Connection, results: list[KeyResult]) -> None:
    """Each source's resolved keys into its names table."""
    def row(result: KeyResult) -> tuple:
        return (*result.key, taxon_id(result.taxon) if result.taxon else None, result.reason,
                "; ".join(result.changes) or None)

    for source in sources.SOURCES:
        bulk.load_rows(connection, source.NAMES.table, (*source.NAMES.key_columns, "taxon_id", "unnamed_reason",
                                                        "changes"),
                       (row(r) for r in results if r.source == source.NAME))


def _name_images(connection: Connection) -> None:
    """Give every image the taxon (or the reason for none) of its naming key."""
    # Fresh statistics, or the planner joins 10M images to just-loaded tables it believes empty.
    for source in sources.SOURCES:
        for table in (source.NAMES.table, *source.NAMES.joined_tables):
            connection.exec_driver_sql(f"ANALYZE {table}")
    connection.exec_driver_sql("ANALYZE taxa")
    # Only rows whose name changed are written: re-resolving an unchanged catalog rewrites no image.
    changed = ("(COALESCE(images.taxon_id, -1) <> COALESCE(n.taxon_id, -1) "
               "OR COALESCE(images.unnamed_reason, '') <> COALESCE(n.unnamed_reason, ''))")
    for source in sources.SOURCES:
        for statement in source.NAMES.name_images:
            connection.exec_driver_sql(statement.replace("{changed}", changed))
    connection.exec_driver_sql("ANALYZE images")
    # An image whose key no longer resolves (e.g. a BIOSCAN record dropped from the metadata) loses its name.
    connection.exec_driver_sql("""
        UPDATE images SET taxon_id = NULL, unnamed_reason = 'its naming key no longer resolves'
        WHERE taxon_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM taxa AS t WHERE t.id = images.taxon_id)""")

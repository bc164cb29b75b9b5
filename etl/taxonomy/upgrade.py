"""naming.md §5's upgrade: a lookup from ITIS and the resolver that fills the empty higher ranks of a taxon."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl.naming import RANK_NAMES, accepted_kingdom, is_native_kingdom, normalise
from etl.sources.common import Taxon


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
    # Binomials whose ranks come from a provider writing its kingdom outside the vocabulary (NCBI's
    # `Viridiplantae`): usable to fill empty ranks, never to replace a classification in the vocabulary.
    foreign: set[tuple[str, str]] = field(default_factory=set)

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
                    slots[rank] = cast(str, name)  # keys of rank entries are plain names
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
    `(row_no, name, K, P, C, O, F)` (first wins). A resolver row whose kingdom maps to no accepted kingdom is
    left out; one whose kingdom needed mapping marks its binomial `foreign`."""
    table = UpgradeTable.seeded_from(corrections)
    for row_no, *ranks in itis_rows:
        table.add_taxon(normalise(ranks), strict=True, where=f"ITIS row {row_no}")
    for row_no, name, *ranks in resolver_rows:
        if not accepted_kingdom(ranks[0]):
            continue  # a kingdom outside the vocabulary (a virus realm, `Protista`): its ranks are not used
        genus, _, epithet = name.partition(" ")
        taxon = normalise([*ranks, genus.lower(), epithet.lower()])
        if not is_native_kingdom(ranks[0]) and (taxon[5], taxon[6]) not in table.entries:
            table.foreign.add((taxon[5], taxon[6]))
        table.add_taxon(taxon, strict=False, where=f"resolver line {row_no}")
    return table


def build_upgrade_table(connection: Connection, corrections: dict) -> UpgradeTable:
    """The lookup from the loaded ITIS and resolver tables."""
    return upgrade_table_from_rows(
        corrections,
        connection.execute(text('SELECT row_no, kingdom, phylum, "class", "order", family, genus, species '
                                "FROM ref_itis_chains ORDER BY row_no")),
        connection.execute(text('SELECT row_no, name, kingdom, phylum, "class", "order", family '
                                "FROM ref_resolved ORDER BY row_no")))

"""Exclusion lists: images and species that must never reach a shard (the Rare Species benchmark).

`seen_in_training.json` lists images to withhold (their species stay in training); `unseen_in_training.json`
lists species to withhold entirely, with some of their images. The old code compared the unseen keys (seven
ranks joined by `-`) with `Genus species` strings, so the species exclusion never matched (naming.md §11
#8); here both lists become rows of `exclusions`, and the view `image_exclusions` matches images by file name
and by the genus and epithet of their resolved taxon, in every source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, insert, text
from sqlalchemy.engine import Engine

from etl.errors import TolError
from etl.models import Exclusion
from etl.naming import normalise, split_rank_key

SEEN_LIST = "rare-species-seen"
UNSEEN_LIST = "rare-species-unseen"


def _read_list(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TolError(f"rare-species list not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise TolError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise TolError(f"{path}: expected an object mapping each species to a list of image paths")
    return data


def rare_species_rows(seen: Path, unseen: Path) -> list[dict]:
    """The exclusion rows of the two rare-species lists (pure apart from reading the files)."""
    rows: list[dict] = []
    for list_name, path in ((SEEN_LIST, seen), (UNSEEN_LIST, unseen)):
        for key, paths in _read_list(path).items():
            for entry in paths:
                if not isinstance(entry, str) or not entry.strip():
                    raise TolError(f"{path}: entry under {key!r} is not a path: {entry!r}")
                rows.append({"list_name": list_name, "kind": "image", "entry": entry,
                             "file_name": entry.rsplit("/", 1)[-1],
                             "reason": f"rare-species benchmark image ({key})"})
            if list_name == UNSEEN_LIST:
                try:
                    ranks = split_rank_key(key)
                except ValueError as exc:
                    raise TolError(f"{path}: {exc}") from None
                taxon = normalise(ranks)
                if not (taxon[5] and taxon[6]):
                    raise TolError(f"{path}: key {key!r} names no genus and epithet")
                rows.append({"list_name": list_name, "kind": "species", "entry": key, "genus": taxon[5],
                             "species": taxon[6], "reason": "rare-species benchmark species (unseen in training)"})
    return rows


def load_rare_species(engine: Engine, seen: Path, unseen: Path) -> tuple[int, int]:
    """Replace both rare-species lists in the catalog; returns (image entries, species entries)."""
    rows = rare_species_rows(seen, unseen)
    with engine.begin() as connection:
        connection.execute(delete(Exclusion).where(Exclusion.list_name.in_([SEEN_LIST, UNSEEN_LIST])))
        if rows:
            connection.execute(insert(Exclusion), [{"genus": None, "species": None, "file_name": None, **row}
                                                   for row in rows])
        # Fresh statistics: believing the list nearly empty, PostgreSQL probed the 10M-image identity indexes
        # once per entry, and the report took over five minutes instead of seconds (bench/scale).
        connection.exec_driver_sql("ANALYZE exclusions")
    return sum(r["kind"] == "image" for r in rows), sum(r["kind"] == "species" for r in rows)


@dataclass
class ExclusionReport:
    """Counts per list and kind, entries matching nothing, and the overlap check against shard plans."""

    per_list: list[tuple[str, str, int, int]]  # list, kind, entries, images matched
    unmatched: list[tuple[str, str]]  # list, entry
    excluded_images: int
    planned_excluded: int
    planned_unseen_species: int
    plans: int

    @property
    def overlaps(self) -> bool:
        """Whether a shard plan holds an excluded image or an image of an excluded species."""
        return bool(self.planned_excluded or self.planned_unseen_species)

    def lines(self, examples: int = 10) -> list[str]:
        """What `tol exclude report` prints, with at most `examples` unmatched entries; `overlap: none` last
        unless the report `overlaps`."""
        out = [f"{list_name:<22} {kind:<8} {entries:>7} entries  {matched:>9} images matched"
               for list_name, kind, entries, matched in self.per_list]
        out.append(f"excluded images in the catalog: {self.excluded_images}")
        if self.unmatched:
            out.append(f"entries matching no catalogued image: {len(self.unmatched)}")
            out += [f"  {list_name}: {entry}" for list_name, entry in self.unmatched[:examples]]
        out.append(f"shard plans: {self.plans}; planned samples that are excluded images: {self.planned_excluded}; "
                   f"of excluded species: {self.planned_unseen_species}")
        if not self.overlaps:
            out.append("overlap: none")
        return out


def report(engine: Engine, examples: int = 10) -> ExclusionReport:
    """What the exclusions match, and proof that no shard plan holds an excluded image or unseen species."""
    with engine.connect() as connection:
        # The view is evaluated once into (image, entry) pairs; everything else is counted from those.
        matches = connection.execute(text("SELECT image_id, exclusion_id FROM image_exclusions")).all()
        entries = connection.execute(text(
            "SELECT id, list_name, kind, entry FROM exclusions ORDER BY list_name, kind, entry")).all()
        excluded_ids = {image for image, _ in matches}
        planned_excluded = 0
        if excluded_ids:
            planned_excluded = connection.execute(text("""
                SELECT COUNT(*) FROM shard_members AS m
                JOIN (SELECT DISTINCT image_id FROM image_exclusions) AS x ON x.image_id = m.image_id""")).scalar_one()
        planned_unseen = connection.execute(text("""
            SELECT COUNT(*) FROM shard_members AS m
            JOIN images AS i ON i.id = m.image_id
            JOIN taxa AS t ON t.id = i.taxon_id
            JOIN exclusions AS e ON e.kind = 'species' AND e.genus = t.genus AND e.species = t.species""")).scalar_one()
        plans = connection.execute(text("SELECT COUNT(*) FROM shard_plans")).scalar_one()
    images_per_entry: dict[int, set[str]] = {}
    for image, entry in matches:
        images_per_entry.setdefault(entry, set()).add(image)
    per_list: dict[tuple[str, str], list] = {}  # (entries, images matched)
    for entry_id, list_name, kind, _ in entries:
        counts = per_list.setdefault((list_name, kind), [0, set()])
        counts[0] += 1
        counts[1] |= images_per_entry.get(entry_id, set())
    unmatched = [(list_name, entry) for entry_id, list_name, _, entry in entries if entry_id not in images_per_entry]
    return ExclusionReport([(name, kind, n, len(images)) for (name, kind), (n, images) in per_list.items()],
                           unmatched, len(excluded_ids), planned_excluded, planned_unseen, plans)

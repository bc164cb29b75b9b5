"""Exclusion lists: images and species that must never reach a shard (the Rare Species benchmark).

`seen_in_training.json` lists images to withhold (their species stay in training); `unseen_in_training.json`
lists species to withhold entirely, with some of their images. The old code compared the unseen keys (seven
ranks joined by `-`) with `Genus species` strings, so the species exclusion never matched (naming.md §11
#8); here both lists become rows of `exclusions`, and the view `image_exclusions` matches images by file name
and by the genus and epithet of their resolved taxon, in every source.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import delete, insert, text
from sqlalchemy.engine import Engine

from etl.errors import TolError
from etl.models import Exclusion
from etl.naming import normalise, split_rank_key
from etl.sources.common import RowReject, record_row_rejects
from etl.taxonomy.references import check_rejects

SEEN_LIST = "rare-species-seen"
UNSEEN_LIST = "rare-species-unseen"


class RareSpeciesRows(NamedTuple):
    """The exclusion rows read from the two lists, and the entries rejected from each list (by list name)."""

    rows: list[dict]
    rejects: dict[str, list[RowReject]]


class RareSpeciesLoad(NamedTuple):
    """What `load_rare_species` did: image and species entries loaded, entries rejected per list and reason."""

    images: int
    species: int
    rejects: dict[str, dict[str, int]]

    def lines(self) -> list[str]:
        """What loading prints: the entries loaded, then per list the records rejected by reason."""
        out = [f"loaded {self.images} image entries and {self.species} species entries"]
        for list_name, reasons in sorted(self.rejects.items()):
            out.append(f"{list_name}: {sum(reasons.values())} records rejected (see ref_rejects)")
            out += [f"  {count} rejected: {reason}" for reason, count in sorted(reasons.items())]
        return out


def _read_list(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TolError(f"rare-species list not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise TolError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise TolError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise TolError(f"{path}: expected an object mapping each species to a list of image paths")
    return data


def _raw(key: str, value: object) -> str:
    return json.dumps({key: value}, ensure_ascii=False)


def _list_rows(list_name: str, data: dict[str, object]) -> tuple[list[dict], list[RowReject]]:
    """The rows of one list, and its malformed records (numbered from 1 in file order: a key, then its
    entries). A bad entry is rejected alone; a key that names no species rejects the whole record (unseen
    list), because its images would be withheld under a species no taxon can match."""
    rows: list[dict] = []
    rejects: list[RowReject] = []
    record = 0
    for key, paths in data.items():
        record += 1
        if not isinstance(paths, list):
            rejects.append(RowReject(record, "value is not a list of image paths", _raw(key, paths)))
            continue
        species_row: dict | None = None
        if list_name == UNSEEN_LIST:
            try:
                taxon = normalise(split_rank_key(key))
            except ValueError:
                rejects.append(RowReject(record, "key is not seven ranks joined by '-'", _raw(key, paths)))
                continue
            if not (taxon[5] and taxon[6]):
                rejects.append(RowReject(record, "key names no genus and epithet", _raw(key, paths)))
                continue
            species_row = {"list_name": list_name, "kind": "species", "entry": key, "genus": taxon[5],
                           "species": taxon[6], "reason": "rare-species benchmark species (unseen in training)"}
        for entry in paths:
            record += 1
            if not isinstance(entry, str) or not entry.strip():
                rejects.append(RowReject(record, "entry is not an image path", _raw(key, entry)))
                continue
            rows.append({"list_name": list_name, "kind": "image", "entry": entry,
                         "file_name": entry.rsplit("/", 1)[-1], "reason": f"rare-species benchmark image ({key})"})
        if species_row:
            rows.append(species_row)
    return rows, rejects


def rare_species_rows(seen: Path, unseen: Path, reject_percent: int = 5) -> RareSpeciesRows:
    """The exclusion rows of the two rare-species lists (pure apart from reading the files).

    A malformed record is rejected and the rest read; a list fails as a whole (TolError, one line) only when it
    is not a JSON object, or when more than `reject_percent` percent of its records are malformed.
    """
    rows: list[dict] = []
    rejects: dict[str, list[RowReject]] = {}
    for list_name, path in ((SEEN_LIST, seen), (UNSEEN_LIST, unseen)):
        list_rows, list_rejects = _list_rows(list_name, _read_list(path))
        check_rejects(path, len(list_rows), list_rejects, reject_percent)
        rows += list_rows
        rejects[list_name] = list_rejects
    return RareSpeciesRows(rows, rejects)


def load_rare_species(engine: Engine, seen: Path, unseen: Path, reject_percent: int = 5) -> RareSpeciesLoad:
    """Replace both rare-species lists in the catalog, their malformed records in `ref_rejects` (resources
    `rare-species-seen` and `rare-species-unseen`)."""
    rows, rejects = rare_species_rows(seen, unseen, reject_percent)
    with engine.begin() as connection:
        connection.execute(delete(Exclusion).where(Exclusion.list_name.in_([SEEN_LIST, UNSEEN_LIST])))
        if rows:
            connection.execute(insert(Exclusion), [{"genus": None, "species": None, "file_name": None, **row}
                                                   for row in rows])
        for list_name, list_rejects in rejects.items():
            record_row_rejects(connection, list_name, list_rejects)
        # Fresh statistics: believing the list nearly empty, PostgreSQL probed the 10M-image identity indexes
        # once per entry, and the report took over five minutes instead of seconds (bench/scale).
        connection.exec_driver_sql("ANALYZE exclusions")
    return RareSpeciesLoad(sum(r["kind"] == "image" for r in rows), sum(r["kind"] == "species" for r in rows),
                           {name: dict(Counter(r.reason for r in found)) for name, found in rejects.items() if found})


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
        # The view's (image, entry) pairs: the per-list counts and the unmatched entries are made from those.
        matches = connection.execute(text("SELECT image_id, exclusion_id FROM image_exclusions")).all()
        entries = connection.execute(text(
            "SELECT id, list_name, kind, entry FROM exclusions ORDER BY list_name, kind, entry")).all()
        excluded_ids = {image for image, _ in matches}
        # The planned samples whose image is excluded, and of those the ones of an excluded species, in one scan
        # of `shard_members` against the view's images (each once, flagged when a species entry matches it): the
        # view alone states what an excluded species is. Looking every member's image and taxon up instead took
        # SQLite 130 s at 10M images.
        planned_excluded, planned_unseen = connection.execute(text("""
            SELECT COUNT(*), COALESCE(SUM(x.species), 0) FROM shard_members AS m
            JOIN (SELECT image_id, MAX(CASE WHEN kind = 'species' THEN 1 ELSE 0 END) AS species
                  FROM image_exclusions GROUP BY image_id) AS x ON x.image_id = m.image_id""")).one()
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
                           unmatched, len(excluded_ids), int(planned_excluded), int(planned_unseen), plans)

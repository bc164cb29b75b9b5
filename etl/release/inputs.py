"""Reading a published release's `metadata/mapping.sqlite` and `metadata/catalog.csv`, and checking them.

Pure: rows in, named entries and counted rejects out; nothing here touches the catalog. Every malformed row is a
`ReleaseReject` with its file, place and reason (never an exception); only a file that cannot be read at all, or
that lacks a table or column, is a `TolError` naming it.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from etl.errors import TolError

ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CATALOG_COLUMNS = ("split", "treeoflife_id", "eol_content_id", "eol_page_id", "bioscan_part", "bioscan_filename",
                   "inat21_filename", "inat21_cls_name", "inat21_cls_num", "kingdom", "phylum", "class", "order",
                   "family", "genus", "species", "common")
NAME_COLUMNS = CATALOG_COLUMNS[9:]
MAPPING_TABLES = {
    "eol": ("content_id", "page_id", "evobio10m_id"),
    "inat21": ("filename", "cls_name", "cls_num", "evobio10m_id"),
    "bioscan": ("part", "filename", "evobio10m_id"),
    "split": ("evobio10m_id", "is_val", "is_train_small"),
}
CATALOG_SPLITS = ("train", "val", "train_small")


class MapEntry(NamedTuple):
    """One published treeoflife_id and the source identity it names (the columns of `release_ids`)."""

    treeoflife_id: str
    source: str
    eol_content_id: int | None = None
    eol_page_id: int | None = None
    inat21_filename: str | None = None
    inat21_cls_name: str | None = None
    inat21_cls_num: int | None = None
    bioscan_part: int | None = None
    bioscan_filename: str | None = None

    @property
    def identity(self) -> tuple:
        """The natural key of the image in its source (what two entries must not share)."""
        if self.source == "eol":
            return ("eol", self.eol_content_id, self.eol_page_id)
        if self.source == "inat21":
            return ("inat21", self.inat21_cls_num, self.inat21_filename)
        return ("bioscan", self.bioscan_part, self.bioscan_filename)


class SplitEntry(NamedTuple):
    """The published split of one treeoflife_id."""

    treeoflife_id: str
    split: str  # train or val
    in_train_small: bool


class ReleaseReject(NamedTuple):
    """A row not imported, or a place where the two inputs disagree."""

    input: str  # mapping, catalog or both
    location: str
    reason: str


@dataclass
class ReleaseInputs:
    """What was read: the identity map, the split, the rejects, and how the inputs compare."""

    entries: dict[str, MapEntry] = field(default_factory=dict)
    splits: dict[str, SplitEntry] = field(default_factory=dict)
    rejects: list[ReleaseReject] = field(default_factory=list)
    disagreements: list[ReleaseReject] = field(default_factory=list)
    only_in_mapping: int = 0


# ============================================================================================== value rules


def parse_id(value: object) -> str | None:
    """A treeoflife_id as the release writes it (36 lower-case characters of a UUID), else None.

    >>> parse_id("0F3C1B2E-9D4A-4B1E-8C3D-5A6B7C8D9E0F") is None
    True
    """
    text = str(value).strip() if value is not None else ""
    return text if ID_PATTERN.match(text) else None


def parse_int(value: object) -> int | None:
    """An integer from a column value (`"12"`, `12`, `"12.0"` from a spreadsheet), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.0+", text):
        return int(text.split(".")[0])
    return None


def parse_flag(value: object) -> bool | None:
    """`is_val` / `is_train_small`: 0 or 1 (as integers or text), else None (an unknown split value)."""
    number = parse_int(value)
    return None if number not in (0, 1) else bool(number)


def split_of_flags(is_val: object, is_train_small: object) -> tuple[str, bool] | None:
    """(split, in train_small) of a `split` table row, or None when the flags are unknown or contradict
    (val and train_small at once)."""
    val, small = parse_flag(is_val), parse_flag(is_train_small)
    if val is None or small is None or (val and small):
        return None
    return ("val" if val else "train"), small


def entry_of_catalog_row(row: dict[str, str]) -> MapEntry | str:
    """The identity a catalog.csv row names, or why it names none (no source, or more than one)."""
    tol_id = row.get("treeoflife_id", "")
    filled = [source for source, columns in (
        ("eol", ("eol_content_id", "eol_page_id")), ("bioscan", ("bioscan_part", "bioscan_filename")),
        ("inat21", ("inat21_filename", "inat21_cls_num"))) if any((row.get(c) or "").strip() for c in columns)]
    if not filled:
        return "row names no source (every source id column is empty)"
    if len(filled) > 1:
        return f"row names more than one source ({', '.join(filled)})"
    return _entry(filled[0], tol_id, row)


def _entry(source: str, tol_id: str, row: dict) -> MapEntry | str:
    if source == "eol":
        content, page = parse_int(row.get("eol_content_id")), parse_int(row.get("eol_page_id"))
        if content is None or page is None:
            return "eol content_id and page_id must both be integers"
        return MapEntry(tol_id, "eol", eol_content_id=content, eol_page_id=page)
    if source == "inat21":
        number = parse_int(row.get("inat21_cls_num"))
        filename = (row.get("inat21_filename") or "").strip()
        if number is None or not filename:
            return "inat21 filename must be given and cls_num must be an integer"
        return MapEntry(tol_id, "inat21", inat21_filename=filename,
                        inat21_cls_name=(row.get("inat21_cls_name") or "").strip() or None, inat21_cls_num=number)
    part = parse_int(row.get("bioscan_part"))
    filename = (row.get("bioscan_filename") or "").strip()
    if part is None or not filename:
        return "bioscan part must be an integer and filename must be given"
    return MapEntry(tol_id, "bioscan", bioscan_part=part, bioscan_filename=filename)


# ============================================================================================== collecting


class _Collector:
    """Adds entries and splits of one input, rejecting duplicate ids and identities mapped twice."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: dict[str, MapEntry] = {}
        self.where: dict[str, str] = {}
        self.by_identity: dict[tuple, str] = {}
        self.splits: dict[str, SplitEntry] = {}
        self.rejects: list[ReleaseReject] = []

    def reject(self, location: str, reason: str) -> None:
        self.rejects.append(ReleaseReject(self.name, location, reason))

    def add_entry(self, location: str, entry: MapEntry) -> bool:
        known = self.entries.get(entry.treeoflife_id)
        if known is not None:
            first = self.where[entry.treeoflife_id]
            self.reject(location, f"duplicate treeoflife_id {entry.treeoflife_id} (first at {first})")
            return False
        other = self.by_identity.get(entry.identity)
        if other is not None:
            self.reject(location, f"identity mapped twice: {_identity_text(entry)} is already {other}")
            return False
        self.entries[entry.treeoflife_id] = entry
        self.where[entry.treeoflife_id] = location
        self.by_identity[entry.identity] = entry.treeoflife_id
        return True


def _identity_text(entry: MapEntry) -> str:
    source, *parts = entry.identity
    return f"{source} ({', '.join(map(str, parts))})"


def read_mapping(path: Path) -> tuple[dict[str, MapEntry], dict[str, SplitEntry], list[ReleaseReject]]:
    """The identity map and split of a release's `mapping.sqlite`, with the rows that were rejected."""
    collector = _Collector("mapping")
    for table, location, row in _mapping_rows(path):
        if table == "split":
            continue
        tol_id = parse_id(row["evobio10m_id"])
        if tol_id is None:
            collector.reject(location, f"malformed treeoflife_id {row['evobio10m_id']!r}")
            continue
        renamed = {f"{table}_{k}": v for k, v in row.items()}
        entry = _entry(table, tol_id, renamed)
        if isinstance(entry, str):
            collector.reject(location, entry)
            continue
        collector.add_entry(location, entry)
    for _, location, row in _mapping_rows(path, only="split"):
        tol_id = parse_id(row["evobio10m_id"])
        if tol_id is None:
            collector.reject(location, f"malformed treeoflife_id {row['evobio10m_id']!r}")
            continue
        split = split_of_flags(row["is_val"], row["is_train_small"])
        if split is None:
            collector.reject(location, f"unknown split value is_val={row['is_val']!r}, "
                                       f"is_train_small={row['is_train_small']!r}")
            continue
        if tol_id not in collector.entries:
            collector.reject(location, f"split row names no source: {tol_id} is in no eol, inat21 or bioscan row")
            continue
        if tol_id in collector.splits:
            collector.reject(location, f"duplicate treeoflife_id {tol_id} in the split table")
            continue
        collector.splits[tol_id] = SplitEntry(tol_id, *split)
    return collector.entries, collector.splits, collector.rejects


def _mapping_rows(path: Path, only: str | None = None) -> Iterator[tuple[str, str, dict]]:
    if not path.is_file():
        raise TolError(f"mapping file {path} does not exist")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise TolError(f"mapping file {path} cannot be opened: {exc}") from None
    try:
        for table, columns in MAPPING_TABLES.items():
            if (only is None and table == "split") or (only is not None and table != only):
                continue
            try:
                cursor = connection.execute(f"SELECT rowid, {', '.join(columns)} FROM {table} ORDER BY rowid")
            except sqlite3.DatabaseError as exc:
                raise TolError(f"mapping file {path}: table {table}({', '.join(columns)}) cannot be read: "
                               f"{exc}") from None
            for rowid, *values in cursor:
                yield table, f"{path.name}:{table}:{rowid}", dict(zip(columns, values, strict=True))
    finally:
        connection.close()


def read_catalog(path: Path) -> tuple[dict[str, MapEntry], dict[str, SplitEntry], list[ReleaseReject]]:
    """The identity map and split of a release's `catalog.csv` (train_small rows repeat train rows), with the
    rows that were rejected."""
    collector = _Collector("catalog")
    small: list[tuple[str, str]] = []
    for location, row in catalog_rows(path):
        split = (row.get("split") or "").strip()
        if split not in CATALOG_SPLITS:
            collector.reject(location, f"unknown split value {split!r}")
            continue
        tol_id = parse_id(row.get("treeoflife_id"))
        if tol_id is None:
            collector.reject(location, f"malformed treeoflife_id {row.get('treeoflife_id')!r}")
            continue
        entry = entry_of_catalog_row(row)
        if isinstance(entry, str):
            collector.reject(location, entry)
            continue
        if split == "train_small":
            small.append((location, tol_id))
            continue
        if collector.add_entry(location, entry):
            collector.splits[tol_id] = SplitEntry(tol_id, split, False)
    for location, tol_id in small:
        known = collector.splits.get(tol_id)
        if known is None or known.split != "train":
            collector.reject(location, f"train_small row {tol_id} repeats no train row")
        elif known.in_train_small:
            collector.reject(location, f"duplicate train_small row {tol_id}")
        else:
            collector.splits[tol_id] = known._replace(in_train_small=True)
    return collector.entries, collector.splits, collector.rejects


def catalog_rows(path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """(`file:line`, row) of a catalog.csv; a TolError naming the file when its header lacks a column."""
    if not path.is_file():
        raise TolError(f"catalog file {path} does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CATALOG_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise TolError(f"catalog file {path}: header lacks column(s) {', '.join(missing)}")
        try:
            for row in reader:
                yield f"{path.name}:{reader.line_num}", row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise TolError(f"catalog file {path} line {reader.line_num}: {exc}") from None


# ============================================================================================== both


def combine(mapping: tuple[dict[str, MapEntry], dict[str, SplitEntry], list[ReleaseReject]] | None,
            catalog: tuple[dict[str, MapEntry], dict[str, SplitEntry], list[ReleaseReject]] | None) -> ReleaseInputs:
    """One identity map and split from either input or both.

    With both, `mapping.sqlite` is the identity map (it lists every image, the catalog only those written) and
    `catalog.csv` is the split (what the release wrote, after its exclusions): an id of the mapping that the
    catalog does not list is in no split (`only_in_mapping`). A catalog row naming another identity than the
    mapping, an id the mapping lacks, or a split other than the mapping's `split` table is a disagreement; the
    catalog's split is used, a row the mapping lacks or contradicts is not."""
    if mapping is None and catalog is None:
        raise TolError("give --mapping, --catalog or both")
    result = ReleaseInputs()
    if mapping is None or catalog is None:
        entries, splits, rejects = mapping or catalog  # type: ignore[misc]
        result.entries, result.splits, result.rejects = dict(entries), dict(splits), list(rejects)
        return result
    result.entries = dict(mapping[0])
    result.rejects = [*mapping[2], *catalog[2]]
    for tol_id, entry in catalog[0].items():
        known = result.entries.get(tol_id)
        if known is None:
            result.disagreements.append(ReleaseReject("both", tol_id, "in catalog.csv, not in mapping.sqlite"))
            continue
        if known.identity != entry.identity:
            result.disagreements.append(ReleaseReject(
                "both", tol_id, f"catalog.csv names {_identity_text(entry)}, mapping.sqlite {_identity_text(known)}"))
            continue
        published, mapped = catalog[1][tol_id], mapping[1].get(tol_id)
        if mapped is not None and published[1:] != mapped[1:]:
            result.disagreements.append(ReleaseReject(
                "both", tol_id, f"catalog.csv puts it in {_split_text(published)}, mapping.sqlite in "
                                f"{_split_text(mapped)}"))
        result.splits[tol_id] = published
    result.only_in_mapping = sum(1 for tol_id in result.entries if tol_id not in catalog[0])
    return result


def _split_text(entry: SplitEntry) -> str:
    return f"{entry.split}{' + train_small' if entry.in_train_small else ''}"


def iter_reasons(rejects: Iterable[ReleaseReject]) -> dict[str, int]:
    """Counts of rejects per reason kind (the reason up to its first colon or parenthesis, numbers aside)."""
    counts: dict[str, int] = {}
    for reject in rejects:
        kind = re.split(r"[:(]| \d| [0-9a-f]{8}-", reject.reason, maxsplit=1)[0].strip()
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))

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


# ============================================================================================== checking
# Rows are checked one by one in Python (the rules above), then against each other in a scratch SQLite file
# (duplicates, identities mapped twice, splits naming no source, the two inputs compared), so a release of
# 10M ids is never held in memory.

SCRATCH_SCHEMA = """
CREATE TABLE map (seq INTEGER, input TEXT, location TEXT, tol_id TEXT, source TEXT, eol_content_id INTEGER,
                  eol_page_id INTEGER, inat21_filename TEXT, inat21_cls_name TEXT, inat21_cls_num INTEGER,
                  bioscan_part INTEGER, bioscan_filename TEXT);
CREATE TABLE split (seq INTEGER, input TEXT, location TEXT, tol_id TEXT, split TEXT, small INTEGER);
"""
IDENTITY_COLUMNS = {"eol": ("eol_content_id", "eol_page_id"), "inat21": ("inat21_cls_num", "inat21_filename"),
                    "bioscan": ("bioscan_part", "bioscan_filename")}
ENTRY_COLUMNS = MapEntry._fields[1:]


class ReleaseInputs:
    """What was read from either input or both (see `read_inputs`): the identity map and split, kept in a
    scratch SQLite file in `folder`, and the rejects and disagreements."""

    def __init__(self, folder: Path) -> None:
        path = folder / "release-inputs.sqlite"
        path.unlink(missing_ok=True)  # a scratch file, only ever this read's
        self.db = sqlite3.connect(path)
        self.db.executescript(SCRATCH_SCHEMA)
        self.rejects: list[ReleaseReject] = []
        self.disagreements: list[ReleaseReject] = []
        self.only_in_mapping = 0
        self.seq = 0

    def close(self) -> None:
        """Close the scratch file (its folder is the caller's)."""
        self.db.close()

    def reject(self, input_name: str, location: str, reason: str) -> None:
        """Record a row that is not imported."""
        self.rejects.append(ReleaseReject(input_name, location, reason))

    def add_entry(self, input_name: str, location: str, entry: MapEntry, split: str | None = None) -> None:
        """Stage one identity (and, for the catalog, the split of its row under the same sequence number)."""
        self.seq += 1
        self.db.execute("INSERT INTO map VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (self.seq, input_name, location, *entry))
        if split is not None:
            self.db.execute("INSERT INTO split VALUES (?, ?, ?, ?, ?, 0)",
                            (self.seq, input_name, location, entry.treeoflife_id, split))

    def add_split(self, input_name: str, location: str, tol_id: str, split: str, small: bool) -> None:
        """Stage one split row."""
        self.seq += 1
        self.db.execute("INSERT INTO split VALUES (?, ?, ?, ?, ?, ?)",
                        (self.seq, input_name, location, tol_id, split, int(small)))

    # ------------------------------------------------------------------------------------------ checks

    def check(self, input_name: str) -> None:
        """Reject, within one input, duplicate ids, identities mapped twice, split rows naming no source and
        train_small rows repeating no train row; what remains is one identity and one split per id."""
        self.db.execute("CREATE INDEX IF NOT EXISTS ix_map_id ON map (input, tol_id, seq)")
        self.db.execute("CREATE INDEX IF NOT EXISTS ix_split_id ON split (input, tol_id, seq)")
        self.db.execute("CREATE INDEX IF NOT EXISTS ix_map_seq ON map (seq)")
        self.db.execute("CREATE INDEX IF NOT EXISTS ix_split_seq ON split (seq)")
        self._drop(input_name, "map", "PARTITION BY m.tol_id", "duplicate treeoflife_id {id} (first at {first})")
        for source, (a, b) in IDENTITY_COLUMNS.items():
            self._drop(input_name, "map", f"PARTITION BY m.{a}, m.{b}",
                       f"identity mapped twice: {source} ({{a}}, {{b}}) is already {{first_id}}",
                       where=f"m.source = '{source}'", identity=(a, b))
        if input_name == "catalog":  # a catalog row's split goes with its row
            self.db.execute("DELETE FROM split WHERE input = 'catalog' AND split <> 'train_small' AND seq NOT IN "
                            "(SELECT seq FROM map WHERE input = 'catalog')")
            rows = self.db.execute("""
                SELECT s.seq, s.location, s.tol_id FROM split AS s
                WHERE s.input = 'catalog' AND s.split = 'train_small' AND NOT EXISTS (
                    SELECT 1 FROM split AS t WHERE t.input = 'catalog' AND t.tol_id = s.tol_id AND t.split = 'train')
                ORDER BY s.seq""").fetchall()
            for _, location, tol_id in rows:
                self.reject("catalog", location, f"train_small row {tol_id} repeats no train row")
            self._delete("split", [row[0] for row in rows])
            self._drop("catalog", "split", "PARTITION BY m.tol_id", "duplicate train_small row {id}",
                       where="m.split = 'train_small'")
        else:
            rows = self.db.execute("""
                SELECT s.seq, s.location, s.tol_id FROM split AS s WHERE s.input = 'mapping' AND NOT EXISTS (
                    SELECT 1 FROM map AS m WHERE m.input = 'mapping' AND m.tol_id = s.tol_id)
                ORDER BY s.seq""").fetchall()
            for _, location, tol_id in rows:
                self.reject("mapping", location,
                            f"split row names no source: {tol_id} is in no eol, inat21 or bioscan row")
            self._delete("split", [row[0] for row in rows])
            self._drop("mapping", "split", "PARTITION BY m.tol_id",
                       "duplicate treeoflife_id {id} in the split table")

    def _drop(self, input_name: str, table: str, partition: str, reason: str, *, where: str = "1 = 1",
              identity: tuple[str, str] | None = None) -> None:
        """Reject and delete every row of `table` after the first of its partition."""
        pair = f"m.{identity[0]} AS a, m.{identity[1]} AS b" if identity else "NULL AS a, NULL AS b"
        rows = self.db.execute(f"""
            SELECT d.seq, d.location, d.tol_id, f.location, f.tol_id, d.a, d.b FROM (
                SELECT m.seq, m.location, m.tol_id, {pair},
                       ROW_NUMBER() OVER ({partition} ORDER BY m.seq) AS n,
                       FIRST_VALUE(m.seq) OVER ({partition} ORDER BY m.seq) AS first_seq
                FROM {table} AS m WHERE m.input = ? AND {where}) AS d
            JOIN {table} AS f ON f.seq = d.first_seq
            WHERE d.n > 1 ORDER BY d.seq""", (input_name,)).fetchall()
        for _, location, tol_id, first, first_id, a, b in rows:
            self.reject(input_name, location, reason.format(id=tol_id, first=first, first_id=first_id, a=a, b=b))
        self._delete(table, [row[0] for row in rows])

    def _delete(self, table: str, seqs: list[int]) -> None:
        self.db.executemany(f"DELETE FROM {table} WHERE seq = ?", [(seq,) for seq in seqs])

    # ------------------------------------------------------------------------------------------ results

    def entries(self) -> Iterator[MapEntry]:
        """The identity map, in id order."""
        for row in self.db.execute(f"SELECT tol_id, {', '.join(ENTRY_COLUMNS)} FROM final_map ORDER BY tol_id"):
            yield MapEntry(*row)

    def splits(self) -> Iterator[SplitEntry]:
        """The split, in id order."""
        for tol_id, split, small in self.db.execute("SELECT tol_id, split, small FROM final_split ORDER BY tol_id"):
            yield SplitEntry(tol_id, split, bool(small))

    def count(self, what: str) -> int:
        """How many ids the map holds (`map`), or the split puts in `train`, `val` or `train_small`."""
        query = {"map": "SELECT COUNT(*) FROM final_map",
                 "train": "SELECT COUNT(*) FROM final_split WHERE split = 'train'",
                 "val": "SELECT COUNT(*) FROM final_split WHERE split = 'val'",
                 "train_small": "SELECT COUNT(*) FROM final_split WHERE small = 1"}[what]
        return int(self.db.execute(query).fetchone()[0])


def read_mapping(path: Path, inputs: ReleaseInputs) -> None:
    """Stage the identity map and split of a release's `mapping.sqlite`, rejecting malformed rows."""
    for table, location, row in _mapping_rows(path):
        if table == "split":
            continue
        tol_id = parse_id(row["evobio10m_id"])
        if tol_id is None:
            inputs.reject("mapping", location, f"malformed treeoflife_id {row['evobio10m_id']!r}")
            continue
        entry = _entry(table, tol_id, {f"{table}_{k}": v for k, v in row.items()})
        if isinstance(entry, str):
            inputs.reject("mapping", location, entry)
            continue
        inputs.add_entry("mapping", location, entry)
    for _, location, row in _mapping_rows(path, only="split"):
        tol_id = parse_id(row["evobio10m_id"])
        if tol_id is None:
            inputs.reject("mapping", location, f"malformed treeoflife_id {row['evobio10m_id']!r}")
            continue
        split = split_of_flags(row["is_val"], row["is_train_small"])
        if split is None:
            inputs.reject("mapping", location, f"unknown split value is_val={row['is_val']!r}, "
                                               f"is_train_small={row['is_train_small']!r}")
            continue
        inputs.add_split("mapping", location, tol_id, *split)
    inputs.check("mapping")


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


def read_catalog(path: Path, inputs: ReleaseInputs) -> None:
    """Stage the identity map and split of a release's `catalog.csv` (train_small rows repeat train rows),
    rejecting malformed rows."""
    for location, row in catalog_rows(path):
        split = (row.get("split") or "").strip()
        if split not in CATALOG_SPLITS:
            inputs.reject("catalog", location, f"unknown split value {split!r}")
            continue
        tol_id = parse_id(row.get("treeoflife_id"))
        if tol_id is None:
            inputs.reject("catalog", location, f"malformed treeoflife_id {row.get('treeoflife_id')!r}")
            continue
        entry = entry_of_catalog_row(row)
        if isinstance(entry, str):
            inputs.reject("catalog", location, entry)
            continue
        if split == "train_small":
            inputs.add_split("catalog", location, tol_id, split, True)
        else:
            inputs.add_entry("catalog", location, entry, split)
    inputs.check("catalog")


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


def read_inputs(mapping: Path | None, catalog: Path | None, folder: Path) -> ReleaseInputs:
    """Read, check and combine whichever inputs are given, with a scratch file in `folder`.

    With both, `mapping.sqlite` is the identity map (it lists every image, the catalog only those written) and
    `catalog.csv` is the split (what the release wrote, after its exclusions): an id of the mapping that the
    catalog does not list is in no split (`only_in_mapping`). A catalog row naming another identity than the
    mapping, an id the mapping lacks, or a split other than the mapping's `split` table is a disagreement; the
    catalog's split is used, a row the mapping lacks or contradicts is not."""
    if mapping is None and catalog is None:
        raise TolError("give --mapping, --catalog or both")
    inputs = ReleaseInputs(folder)
    try:
        if mapping is not None:
            read_mapping(mapping, inputs)
        if catalog is not None:
            read_catalog(catalog, inputs)
        _combine(inputs, mapping is not None, catalog is not None)
    except BaseException:
        inputs.close()
        raise
    return inputs


def _combine(inputs: ReleaseInputs, has_mapping: bool, has_catalog: bool) -> None:
    db = inputs.db
    columns = ", ".join(("tol_id", *ENTRY_COLUMNS))
    map_input = "mapping" if has_mapping else "catalog"
    db.execute(f"CREATE TABLE final_map AS SELECT {columns} FROM map WHERE input = ? ORDER BY tol_id", (map_input,))
    db.execute("CREATE UNIQUE INDEX ix_final_map ON final_map (tol_id)")
    split_input = "catalog" if has_catalog else "mapping"
    db.execute(f"""
        CREATE TABLE final_split AS
        SELECT s.tol_id, s.split, CASE WHEN {'EXISTS (SELECT 1 FROM split AS t WHERE t.input = s.input AND '
                                            "t.tol_id = s.tol_id AND t.split = 'train_small')"
                                            if has_catalog else 's.small'} THEN 1 ELSE 0 END AS small
        FROM split AS s WHERE s.input = ? AND s.split <> 'train_small' ORDER BY s.tol_id""", (split_input,))
    db.execute("CREATE UNIQUE INDEX ix_final_split ON final_split (tol_id)")
    if not (has_mapping and has_catalog):
        return
    identity = " AND ".join(f"COALESCE(c.{column}, '') = COALESCE(m.{column}, '')"
                            for column in ("source", *(c for pair in IDENTITY_COLUMNS.values() for c in pair)))
    for (tol_id,) in db.execute("""
            SELECT c.tol_id FROM map AS c WHERE c.input = 'catalog'
              AND NOT EXISTS (SELECT 1 FROM final_map AS m WHERE m.tol_id = c.tol_id)
            ORDER BY c.tol_id""").fetchall():
        inputs.disagreements.append(ReleaseReject("both", tol_id, "in catalog.csv, not in mapping.sqlite"))
    moved = db.execute(f"""
        SELECT c.tol_id, {', '.join(f'c.{x}' for x in ENTRY_COLUMNS)}, {', '.join(f'm.{x}' for x in ENTRY_COLUMNS)}
        FROM map AS c JOIN final_map AS m ON m.tol_id = c.tol_id
        WHERE c.input = 'catalog' AND NOT ({identity}) ORDER BY c.tol_id""").fetchall()
    width = len(ENTRY_COLUMNS)
    for row in moved:
        published, mapped = MapEntry(row[0], *row[1:1 + width]), MapEntry(row[0], *row[1 + width:])
        inputs.disagreements.append(ReleaseReject(
            "both", row[0], f"catalog.csv names {_identity_text(published)}, mapping.sqlite {_identity_text(mapped)}"))
    for tol_id, split, small, mapped_split, mapped_small in db.execute("""
            SELECT f.tol_id, f.split, f.small, s.split, s.small FROM final_split AS f
            JOIN split AS s ON s.input = 'mapping' AND s.tol_id = f.tol_id
            WHERE f.split <> s.split OR f.small <> s.small ORDER BY f.tol_id""").fetchall():
        inputs.disagreements.append(ReleaseReject(
            "both", tol_id, f"catalog.csv puts it in {_split_text(SplitEntry(tol_id, split, bool(small)))}, "
                            f"mapping.sqlite in {_split_text(SplitEntry(tol_id, mapped_split, bool(mapped_small)))}"))
    # Only ids of the map, under the identity the map gives, keep their catalog split.
    db.execute(f"""DELETE FROM final_split
                   WHERE NOT EXISTS (SELECT 1 FROM final_map AS m WHERE m.tol_id = final_split.tol_id)
                   OR EXISTS (SELECT 1 FROM map AS c JOIN final_map AS m ON m.tol_id = c.tol_id
                              WHERE c.input = 'catalog' AND c.tol_id = final_split.tol_id AND NOT ({identity}))""")
    inputs.only_in_mapping = int(db.execute("""
        SELECT COUNT(*) FROM final_map AS m
        WHERE NOT EXISTS (SELECT 1 FROM map AS c WHERE c.input = 'catalog' AND c.tol_id = m.tol_id)""").fetchone()[0])


def _identity_text(entry: MapEntry) -> str:
    source, *parts = entry.identity
    return f"{source} ({', '.join(map(str, parts))})"


def _split_text(entry: SplitEntry) -> str:
    return f"{entry.split}{' + train_small' if entry.in_train_small else ''}"


def iter_reasons(rejects: Iterable[ReleaseReject]) -> dict[str, int]:
    """Counts of rejects per reason kind (the reason up to its first colon or parenthesis, numbers aside)."""
    counts: dict[str, int] = {}
    for reject in rejects:
        kind = re.split(r"[:('\"]| is_val=| -?\d| [0-9a-f]{8}-", reject.reason, maxsplit=1)[0].strip()
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))

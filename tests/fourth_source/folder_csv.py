"""folder_csv: a flat folder of images, ``<root>/<file name>.jpg``, and ``<root>/taxa.csv`` naming each file.

taxa.csv has the columns ``file_name, kingdom, phylum, class, order, family, genus, species, common_name``; it
is the source's metadata file, kept in the table `folder_csv_taxa` (made by this collection's migration). An
image's identity is its path under the root, its id `ids.source_image_id(NAME, path)`. The whole folder is one
listing unit. A naming key is one distinct seven-rank label of taxa.csv; its taxon is the label as given (like
an iNat21 class folder), and the label's common name, when the reference files know none, is the caption's.

This module implements `etl.sources.Source` and is registered with `etl.sources.register`: nothing outside
this folder names it.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl import bulk
from etl.errors import TolError
from etl.ids import source_image_id
from etl.naming import RANK_NAMES, normalise
from etl.sources.common import (
    COMMON_FIELDS,
    FileStore,
    KeyResult,
    MetadataFile,
    NameLookups,
    NamesTable,
    ReadOptions,
    Reject,
    SourceSetting,
    UnitResult,
    make_row,
    sniff_file,
)

NAME = "folder_csv"
ORDER = 100
ROOT = SourceSetting("folder_csv_root", "folder of images named by the taxa.csv beside them")
UNIT_NAME = "folders"
INGEST_HELP = """Catalogue the images of a folder named by its taxa.csv (pass --metadata ROOT/taxa.csv)."""
FIELDS = COMMON_FIELDS  # no identity columns of its own: its identity is `path`
STAGE_TYPES: dict[str, str] = {}
READ_SETTINGS: tuple[SourceSetting, ...] = ()
TAXA_FILE = "taxa.csv"
TAXA_TABLE = "folder_csv_taxa"
TAXA_COLUMNS = ("file_name", *RANK_NAMES, "common_name")
FILE_PATTERN = re.compile(r"^[^/]+\.jpe?g$", re.IGNORECASE)
# The whole root is one unit, its files' paths their bare names.
UNIT = "."

NAMES = NamesTable("names_folder_csv_labels", RANK_NAMES, (f"""
    UPDATE images SET taxon_id = n.taxon_id, unnamed_reason = n.unnamed_reason
    FROM {TAXA_TABLE} AS t, names_folder_csv_labels AS n
    WHERE images.source = '{NAME}' AND t.file_name = images.path
      AND {" AND ".join(f't."{rank}" = n."{rank}"' for rank in RANK_NAMES)} AND {{changed}}""",),
    joined_tables=(TAXA_TABLE,))


def image_id(path: str) -> str:
    """The treeoflife_id of the image at `path` under the root."""
    return source_image_id(NAME, path)


# ---------------------------------------------------------------------------------------------- listing


def list_units(root: Path) -> tuple[list[str], list[Reject]]:
    """The one unit: the root itself."""
    return [UNIT], []


def scan_unit(root: str, unit: str, check_images: bool = True) -> UnitResult:
    """Catalogue the image files of the root; sub-folders and other files are rejected, taxa.csv skipped."""
    result = UnitResult()
    with os.scandir(os.path.join(root, unit)) as entries:
        listed = sorted((entry.name, entry) for entry in entries if entry.name != TAXA_FILE)
    for name, entry in listed:
        if not entry.is_file(follow_symlinks=True):
            result.rejects.append(Reject(name, "not a regular file (the folder is flat)"))
            continue
        if not FILE_PATTERN.match(name):
            result.rejects.append(Reject(name, "file name does not end in .jpg"))
            continue
        size = entry.stat(follow_symlinks=True).st_size
        fatal, suspect = sniff_file(entry.path, size) if check_images else (None, None)
        if fatal:
            result.rejects.append(Reject(name, fatal))
            continue
        result.rows.append(make_row(image_id(name), name, size, suspect))
    return result


def open_store(root: Path, options: ReadOptions) -> FileStore:
    """Images are files under the root."""
    return FileStore(root)


# -------------------------------------------------------------------------------------------- taxa.csv


def read_taxa(path: Path) -> Iterator[tuple[str, ...]]:
    """The records of a taxa.csv, in TAXA_COLUMNS order (TolError on a missing column)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in TAXA_COLUMNS if column not in (reader.fieldnames or ())]
        if missing:
            raise TolError(f"{path}: no column {', '.join(missing)} (expected {', '.join(TAXA_COLUMNS)})")
        for record in reader:
            yield tuple((record[column] or "").strip() for column in TAXA_COLUMNS)


def load_taxa(connection: Connection, path: Path) -> int:
    """Replace the `folder_csv_taxa` table with the records of `path` (the first record of a file wins)."""
    first: dict[str, tuple[str, ...]] = {}
    for record in read_taxa(path):
        first.setdefault(record[0], record)
    connection.exec_driver_sql(f"DELETE FROM {TAXA_TABLE}")
    return bulk.load_rows(connection, TAXA_TABLE, TAXA_COLUMNS, first.values())


def check_listing(connection: Connection, stage: str, taxa: Path, reject: Callable[[Reject], None],
                  rejected_files: Collection[str]) -> None:
    """Reject staged images taxa.csv does not name, and report its records with no image."""
    orphans = connection.exec_driver_sql(f"""
        SELECT s.seq, s.path FROM {stage} AS s
        WHERE NOT EXISTS (SELECT 1 FROM {TAXA_TABLE} AS t WHERE t.file_name = s.path)
        ORDER BY s.seq""").all()
    for seq, path in orphans:
        reject(Reject(path, f"no record for this file_name in {taxa.name}"))
        connection.exec_driver_sql(f"DELETE FROM {stage} WHERE seq = {int(seq)}")
    unmatched = connection.exec_driver_sql(f"""
        SELECT t.file_name FROM {TAXA_TABLE} AS t
        WHERE NOT EXISTS (SELECT 1 FROM {stage} AS s WHERE s.path = t.file_name)
        ORDER BY t.file_name""").all()
    for (file_name,) in unmatched:
        if file_name not in rejected_files:
            reject(Reject(f"{taxa.name}:{file_name}", "taxa.csv record has no image file under the root"))


METADATA: MetadataFile | None = MetadataFile(
    SourceSetting("folder_csv_taxa", "taxa.csv of a folder_csv root"), "folder_csv taxa.csv",
    "the folder's taxa.csv", load_taxa, check_listing)


# ------------------------------------------------------------------------------------------------ names


def resolve_keys(connection: Connection, lookups: NameLookups) -> list[KeyResult]:
    """One key per distinct label of the catalogued images, named by its ranks as given, with the label's
    common name (the greatest, should its records disagree)."""
    results = []
    for *ranks, common in connection.execute(text(f"""
            SELECT {", ".join(f't."{rank}"' for rank in RANK_NAMES)}, MAX(t.common_name)
            FROM {TAXA_TABLE} AS t
            WHERE EXISTS (SELECT 1 FROM images AS i WHERE i.source = '{NAME}' AND i.path = t.file_name)
            GROUP BY {", ".join(f't."{rank}"' for rank in RANK_NAMES)}
            ORDER BY {", ".join(f't."{rank}"' for rank in RANK_NAMES)}""")):
        taxon = normalise(ranks)
        named = any(taxon)
        results.append(KeyResult(NAME, tuple(ranks), taxon if named else None,
                                 None if named else f"{TAXA_FILE} names no rank", common_name=common))
    return results

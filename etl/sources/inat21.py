"""iNat21 (train split): ``<root>/<NNNNN>_<Kingdom>_<Phylum>_<Class>_<Order>_<Family>_<Genus>_<epithet>/<uuid>.jpg``.

Only folder and file names are read. A class folder is one listing unit, and one naming key: its folder name
gives the seven ranks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl.ids import inat21_image_id
from etl.naming import normalise
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
    scan_image_files,
)
from etl.sources.inat21_annotations import read_annotations
from etl.sources.licensing import ProvenanceHook

NAME = "inat21"
ORDER = 0
ROOT = SourceSetting("inat21_root", "iNat21 train folder holding the class folders")
UNIT_NAME = "class folders"
INGEST_HELP = """Catalogue iNat21 class folders under ROOT.

    ROOT defaults to the `inat21_root` setting.

    \b
    Example:
      tol ingest inat21 /data/inat21/train --workers 8
    """
FIELDS = (*COMMON_FIELDS, "inat21_filename", "inat21_cls_name", "inat21_cls_num")
STAGE_TYPES = {"inat21_filename": "TEXT", "inat21_cls_name": "TEXT", "inat21_cls_num": "INTEGER"}
METADATA: MetadataFile | None = None
READ_SETTINGS: tuple[SourceSetting, ...] = ()
# Each image's license and rights holder: train.json's images[], matched by class number and file name.
PROVENANCE = ProvenanceHook(
    "iNat2021", "@misc{inat2021, author = {Van Horn, Grant and Mac Aodha, Oisin}, title = {iNat Challenge 2021 - "
    "FGVC8}, publisher = {Kaggle}, year = {2021}, url = {https://kaggle.com/competitions/inaturalist-2021}}",
    setting=SourceSetting("inat21_annotations", "iNat21 train.json (images[] license, rights_holder) or its folder"),
    identity=("inat21_cls_num", "inat21_filename"), identity_types=("INTEGER", "TEXT"), read=read_annotations)
NAMES = NamesTable("names_inat21_classes", ("cls_num",), ("""
    UPDATE images SET taxon_id = n.taxon_id, unnamed_reason = n.unnamed_reason
    FROM names_inat21_classes AS n
    WHERE images.source = 'inat21' AND n.cls_num = images.inat21_cls_num AND {changed}""",))
FILE_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jpg$")
CLASS_PATTERN = re.compile(r"^(\d{5})_(.+)$")


class ClassFolder(NamedTuple):
    """A parsed iNat21 class folder name."""

    cls_num: int
    cls_name: str
    ranks: tuple[str, ...]


def parse_class_folder(name: str) -> ClassFolder:
    """Parse `00000_Animalia_…_Lumbricus_terrestris`; raise ValueError saying what is wrong.

    >>> parse_class_folder("04815_Animalia_Chordata_Aves_Passeriformes_Paridae_Cyanistes_caeruleus").cls_num
    4815
    """
    match = CLASS_PATTERN.match(name)
    if not match:
        raise ValueError("class folder name does not start with a 5-digit index and '_'")
    ranks = tuple(match.group(2).split("_"))
    if len(ranks) != 7 or not all(ranks):
        raise ValueError(f"class folder name has {len(ranks)} non-index parts, expected 7 ranks")
    return ClassFolder(int(match.group(1)), match.group(2), ranks)


def list_units(root: Path) -> tuple[list[str], list[Reject]]:
    """The class folders under `root` (sorted) and the entries that are not folders."""
    units: list[str] = []
    rejects: list[Reject] = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=True):
                units.append(entry.name)
            else:
                rejects.append(Reject(entry.name, "not a class folder (a file at the top of the iNat21 root)"))
    units.sort()
    return units, sorted(rejects)


def scan_unit(root: str, unit: str, check_images: bool = True) -> UnitResult:
    """Catalogue the images of one class folder."""
    result = UnitResult()
    try:
        folder = parse_class_folder(unit)
    except ValueError as exc:
        count = sum(1 for _ in os.scandir(os.path.join(root, unit)))
        result.rejects.append(Reject(unit + "/", f"{exc}; its {count} files are not catalogued"))
        return result
    for filename, relative, size, note in scan_image_files(root, unit, FILE_PATTERN, "file name is not <uuid>.jpg",
                                                          check_images):
        if filename is None:
            result.rejects.append(Reject(relative, note))
            continue
        result.rows.append(make_row(
            inat21_image_id(folder.cls_num, filename), relative, size, note,
            inat21_filename=filename, inat21_cls_name=folder.cls_name, inat21_cls_num=folder.cls_num,
        ))
    return result


def open_store(root: Path, options: ReadOptions) -> FileStore:
    """Images are files under the root."""
    return FileStore(root)


def resolve_keys(connection: Connection, lookups: NameLookups) -> list[KeyResult]:
    """One key per class folder, named by its folder name as it is (naming.md §4: iNat21 taxa are complete
    and not upgraded)."""
    results = []
    for cls_num, cls_name in connection.execute(text(
            "SELECT DISTINCT inat21_cls_num, inat21_cls_name FROM images WHERE source = 'inat21' "
            "ORDER BY inat21_cls_num")):
        taxon = normalise(parse_class_folder(f"{cls_num:05d}_{cls_name}").ranks)
        results.append(KeyResult(NAME, (cls_num,), taxon if any(taxon) else None,
                                 None if any(taxon) else "iNat21 class folder names no rank"))
    return results

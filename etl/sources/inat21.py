"""iNat21 (train split): ``<root>/<NNNNN>_<Kingdom>_<Phylum>_<Class>_<Order>_<Family>_<Genus>_<epithet>/<uuid>.jpg``.

Only folder and file names are read. A class folder is one listing unit.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from etl.ids import inat21_image_id
from etl.sources.common import COMMON_FIELDS, Reject, UnitResult, make_row, scan_image_files

FIELDS = (*COMMON_FIELDS, "inat21_filename", "inat21_cls_name", "inat21_cls_num")
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

"""BIOSCAN-1M cropped_256: ``<root>/part<N>/<image_file>``, plus the metadata file that names each image.

A part folder is one listing unit. The metadata (a JSON array in ``.jsonld``, or the same columns as TSV) is
streamed record by record, never loaded whole: the real file has 1.1M records.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from etl.errors import TolError
from etl.ids import bioscan_image_id
from etl.sources.common import COMMON_FIELDS, Reject, UnitResult, make_row, scan_image_files

FIELDS = (*COMMON_FIELDS, "bioscan_part", "bioscan_filename")
PART_PATTERN = re.compile(r"^part([1-9]\d*)$")
FILE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.jpg$")
NOT_CLASSIFIED = "not_classified"


class MetadataRecord(NamedTuple):
    """The fields of one BIOSCAN metadata record that the pipeline uses (raw text, `not_classified` kept)."""

    image_file: str
    order: str
    family: str
    genus: str
    species: str
    chunk_number: str


def list_units(root: Path) -> tuple[list[str], list[Reject]]:
    """The `part<N>` folders under `root` in numeric order, and entries that are not part folders."""
    units: list[tuple[int, str]] = []
    rejects: list[Reject] = []
    with os.scandir(root) as entries:
        for entry in entries:
            match = PART_PATTERN.match(entry.name)
            if match and entry.is_dir(follow_symlinks=True):
                units.append((int(match.group(1)), entry.name))
            elif entry.is_dir(follow_symlinks=True):
                rejects.append(Reject(entry.name + "/", "folder name is not part<N>"))
            # Files beside the parts (the metadata, zips, READMEs) are expected and ignored.
    units.sort()
    return [name for _, name in units], sorted(rejects)


def scan_unit(root: str, unit: str, check_images: bool = True) -> UnitResult:
    """Catalogue the images of one part folder."""
    result = UnitResult()
    part = int(PART_PATTERN.match(unit).group(1))
    files = scan_image_files(root, unit, FILE_PATTERN, "file name is not an image_file name (<name>.jpg)",
                             check_images)
    for filename, relative, size, note in files:
        if filename is None:
            result.rejects.append(Reject(relative, note))
            continue
        result.rows.append(make_row(bioscan_image_id(part, filename), relative, size, note,
                                    bioscan_part=part, bioscan_filename=filename))
    return result


def _record(raw: dict, where: str) -> MetadataRecord:
    try:
        image_file = raw["image_file"]
    except KeyError:
        raise TolError(f"{where}: record has no image_file") from None
    if not isinstance(image_file, str) or not image_file:
        raise TolError(f"{where}: image_file is empty or not text")

    def text(key: str) -> str:
        value = raw.get(key)
        return "" if value is None else str(value)

    return MetadataRecord(image_file, text("order"), text("family"), text("genus"), text("species"),
                          text("chunk_number"))


def _json_array_objects(path: Path, chunk_size: int = 1 << 20) -> Iterator[tuple[int, dict]]:
    """Yield (record number, object) from a file holding one JSON array of objects, in bounded memory."""
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8") as handle:
        buffer = handle.read(chunk_size)
        position = 0
        # Skip to the opening bracket.
        while True:
            stripped = buffer[position:].lstrip()
            position = len(buffer) - len(stripped)
            if stripped:
                break
            more = handle.read(chunk_size)
            if not more:
                return
            buffer, position = more, 0
        if buffer[position] != "[":
            raise TolError(f"{path}: expected a JSON array of records")
        position += 1
        number = 0
        while True:
            # Skip separators; refill the buffer when it runs low so that one record is always whole.
            while True:
                while position < len(buffer) and buffer[position] in " \t\r\n,":
                    position += 1
                if position < len(buffer):
                    break
                more = handle.read(chunk_size)
                if not more:
                    raise TolError(f"{path}: JSON array is not closed (truncated file?)")
                buffer, position = more, 0
            if buffer[position] == "]":
                return
            while True:
                try:
                    obj, end = decoder.raw_decode(buffer, position)
                    break
                except json.JSONDecodeError as exc:
                    more = handle.read(chunk_size)
                    if not more:
                        raise TolError(f"{path}: record {number + 1} is not valid JSON: {exc.msg}") from None
                    buffer, position = buffer[position:] + more, 0
            number += 1
            if not isinstance(obj, dict):
                raise TolError(f"{path}: record {number} is not a JSON object")
            yield number, obj
            position = end
            if position > chunk_size:
                buffer, position = buffer[position:], 0


def read_metadata(path: Path) -> Iterator[MetadataRecord]:
    """Stream the BIOSCAN metadata records from a `.jsonld` (JSON array) or `.tsv` file."""
    if not path.is_file():
        raise TolError(f"BIOSCAN metadata file not found: {path}")
    if path.suffix.lower() in (".tsv", ".txt"):
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            if not reader.fieldnames or "image_file" not in reader.fieldnames:
                raise TolError(f"{path}: TSV header has no image_file column")
            for number, raw in enumerate(reader, start=2):
                yield _record(raw, f"{path} line {number}")
        return
    for number, raw in _json_array_objects(path):
        yield _record(raw, f"{path} record {number}")

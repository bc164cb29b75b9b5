"""BIOSCAN-1M cropped_256: ``<root>/part<N>/<image_file>``, plus the metadata file that names each image.

A part folder is one listing unit. The metadata (a JSON array in ``.jsonld``, or the same columns as TSV) is
streamed record by record, never loaded whole: the real file has 1.1M records. It lives in the table
`bioscan_metadata`, which this module alone writes (on ingest and on `tol taxa load`). A distinct
(order, family, genus, species) label of the metadata is one naming key.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import Connection

from etl import bulk
from etl.errors import TolError
from etl.ids import bioscan_image_id
from etl.models import BioscanMetadata
from etl.naming import normalise
from etl.sources.common import (
    COMMON_FIELDS,
    RAW_LINE_LIMIT,
    FileStore,
    KeyResult,
    MetadataFile,
    NameLookups,
    NamesTable,
    ReadOptions,
    Reject,
    RowReject,
    SourceSetting,
    Taxon,
    UnitResult,
    make_row,
    record_row_rejects,
    scan_image_files,
)
from etl.sources.licensing import DatasetLicense, ProvenanceHook

NAME = "bioscan"
ORDER = 2
ROOT = SourceSetting("bioscan_root", "BIOSCAN-1M cropped_256 folder holding part1 … part113")
UNIT_NAME = "part folders"
INGEST_HELP = """Catalogue BIOSCAN-1M part folders under ROOT.

    Each image must have a record in the metadata file; images without one (and records without an image)
    are reported and recorded. ROOT defaults to the `bioscan_root` setting.

    \b
    Example:
      tol ingest bioscan /data/bioscan/cropped_256 --metadata /data/bioscan/metadata.jsonld
    """
FIELDS = (*COMMON_FIELDS, "bioscan_part", "bioscan_filename")
STAGE_TYPES = {"bioscan_part": "INTEGER", "bioscan_filename": "TEXT"}
READ_SETTINGS: tuple[SourceSetting, ...] = ()
# One license for the whole dataset (as the BIOSCAN-1M release states it); no per-image file.
PROVENANCE = ProvenanceHook(
    "BIOSCAN-1M", "@inproceedings{gharaee2023step, title = {A Step Towards Worldwide Biodiversity Assessment: The "
    "{BIOSCAN-1M} Insect Dataset}, author = {Gharaee, Z. and Gong, Z. and Pellegrino, N. and Zarubiieva, I. and "
    "Haurum, J. B. and Lowe, S. C. and McKeown, J. T. A. and Ho, C. Y. and McLeod, J. and Wei, Y. C. and Agda, J. "
    "and Ratnasingham, S. and Steinke, D. and Chang, A. X. and Taylor, G. W. and Fieguth, P.}, booktitle = "
    "{Advances in Neural Information Processing Systems (NeurIPS) Datasets and Benchmarks Track}, year = {2023}}",
    dataset_license=DatasetLicense("CC BY 3.0", "https://creativecommons.org/licenses/by/3.0/",
                                   "CBG Photography Group, Centre for Biodiversity Genomics, University of Guelph"))
NAMES = NamesTable("names_bioscan_labels", ("order", "family", "genus", "species"), ("""
    UPDATE images SET taxon_id = n.taxon_id, unnamed_reason = n.unnamed_reason
    FROM bioscan_metadata AS m
    JOIN names_bioscan_labels AS n ON n."order" = m."order" AND n.family = m.family
         AND n.genus = m.genus AND n.species = m.species
    WHERE images.source = 'bioscan' AND m.image_file = images.bioscan_filename AND {changed}""", """
    UPDATE images SET unnamed_reason = 'no BIOSCAN metadata record for this image'
    WHERE source = 'bioscan' AND taxon_id IS NULL AND unnamed_reason IS NULL"""), joined_tables=("bioscan_metadata",))
PART_PATTERN = re.compile(r"^part([1-9]\d*)$")
FILE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.jpg$")
NOT_CLASSIFIED = "not_classified"
METADATA_SETTING = SourceSetting("bioscan_metadata", "BIOSCAN_Insect_Dataset_metadata.jsonld (or .tsv)")


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
    match = PART_PATTERN.match(unit)
    if match is None:  # list_units hands out part folders only
        raise ValueError(f"not a BIOSCAN part folder: {unit}")
    part = int(match.group(1))
    files = scan_image_files(root, unit, FILE_PATTERN, "file name is not an image_file name (<name>.jpg)",
                             check_images)
    for filename, relative, size, note in files:
        if filename is None:
            result.rejects.append(Reject(relative, note))
            continue
        result.rows.append(make_row(bioscan_image_id(part, filename), relative, size, note,
                                    bioscan_part=part, bioscan_filename=filename))
    return result


class BadRecord(ValueError):
    """A metadata record that cannot be used; the message is the reason."""


def _record(raw: object) -> MetadataRecord:
    if not isinstance(raw, dict):
        raise BadRecord("record is not a JSON object")
    image_file = raw.get("image_file")
    if not isinstance(image_file, str) or not image_file:
        raise BadRecord("image_file is missing, empty or not text")

    def text(key: str) -> str:
        value = raw.get(key)
        return "" if value is None else str(value)

    return MetadataRecord(image_file, text("order"), text("family"), text("genus"), text("species"),
                          text("chunk_number"))


def _json_array_objects(path: Path, chunk_size: int = 1 << 20) -> Iterator[tuple[int, object]]:
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
            yield number, obj
            position = end
            if position > chunk_size:
                buffer, position = buffer[position:], 0


def read_metadata(path: Path) -> Iterator[MetadataRecord | RowReject]:
    """Stream the BIOSCAN metadata records from a `.jsonld` (JSON array) or `.tsv` file; a record that cannot
    be used comes as a RowReject (record or line number, reason, raw text)."""
    if not path.is_file():
        raise TolError(f"BIOSCAN metadata file not found: {path}")
    if path.suffix.lower() in (".tsv", ".txt"):
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            if not reader.fieldnames or "image_file" not in reader.fieldnames:
                raise TolError(f"{path}: TSV header has no column 'image_file'")
            for raw in reader:
                number = reader.line_num
                if None in raw or any(value is None for value in raw.values()):
                    yield RowReject(number, "number of fields differs from the header",
                                    "\t".join(str(v) for v in raw.values()))
                    continue
                try:
                    yield _record(raw)
                except BadRecord as exc:
                    yield RowReject(number, str(exc), "\t".join(raw.values()))
        return
    for number, obj in _json_array_objects(path):
        try:
            yield _record(obj)
        except BadRecord as exc:
            yield RowReject(number, str(exc), json.dumps(obj)[:RAW_LINE_LIMIT])


# ---------------------------------------------------------------------------------------- the metadata table


def load_metadata(connection: Connection, path: Path) -> int:
    """Replace the `bioscan_metadata` table with the records of `path` (first record per image file wins);
    records that cannot be used go to `ref_rejects` (resource `bioscan_metadata`)."""
    columns = ("seq", "image_file", "order", "family", "genus", "species", "chunk_number")
    bulk.create_temp_table(connection, "bioscan_metadata_stage",
                           [("seq", "BIGINT"), *((c, "TEXT") for c in columns[1:])])
    rejects: list[RowReject] = []

    def records() -> Iterator[tuple]:
        for number, record in enumerate(read_metadata(path)):
            if isinstance(record, RowReject):
                rejects.append(record)
            else:
                yield (number, *record)

    bulk.load_rows(connection, "bioscan_metadata_stage", columns, records())
    record_row_rejects(connection, METADATA_SETTING.name, rejects)
    connection.exec_driver_sql("CREATE INDEX ix_bioscan_metadata_stage ON bioscan_metadata_stage (image_file, seq)")
    connection.execute(delete(BioscanMetadata))
    connection.exec_driver_sql("""
        INSERT INTO bioscan_metadata (image_file, "order", family, genus, species, chunk_number)
        SELECT image_file, "order", family, genus, species, chunk_number FROM bioscan_metadata_stage AS s
        WHERE seq = (SELECT MIN(seq) FROM bioscan_metadata_stage AS f WHERE f.image_file = s.image_file)""")
    return connection.execute(select(func.count()).select_from(BioscanMetadata)).scalar_one()


def check_listing(connection: Connection, stage: str, metadata: Path, reject: Callable[[Reject], None],
                  rejected_files: Collection[str]) -> None:
    """Reject staged images with no metadata record, and report metadata records with no image."""
    orphans = connection.exec_driver_sql(f"""
        SELECT s.seq, s.path FROM {stage} AS s
        WHERE NOT EXISTS (SELECT 1 FROM bioscan_metadata AS m WHERE m.image_file = s.bioscan_filename)
        ORDER BY s.seq""").all()
    for _, path in orphans:
        reject(Reject(path, f"no record for this image_file in {metadata.name}"))
    for start in range(0, len(orphans), 500):
        chunk = [str(int(seq)) for seq, _ in orphans[start:start + 500]]
        connection.exec_driver_sql(f"DELETE FROM {stage} WHERE seq IN ({', '.join(chunk)})")
    unmatched = connection.exec_driver_sql(f"""
        SELECT m.image_file FROM bioscan_metadata AS m
        WHERE NOT EXISTS (SELECT 1 FROM {stage} AS s WHERE s.bioscan_filename = m.image_file)
        ORDER BY m.image_file""")
    for (image_file,) in unmatched.all():
        if image_file in rejected_files:
            continue
        reject(Reject(f"{metadata.name}:{image_file}", "metadata record has no image file under the root"))


METADATA: MetadataFile | None = MetadataFile(
    METADATA_SETTING,
    "BIOSCAN metadata", "BIOSCAN metadata .jsonld or .tsv", load_metadata, check_listing)


# ----------------------------------------------------------------------------------------------------- names


def open_store(root: Path, options: ReadOptions) -> FileStore:
    """Images are files under the root."""
    return FileStore(root)


def label_taxon(order: str, family: str, genus: str, species: str) -> Taxon:
    """The taxon a metadata label names: every BIOSCAN image is an insect; `not_classified` is an empty rank."""
    values = ["" if v == NOT_CLASSIFIED else v for v in (order, family, genus, species)]
    return normalise(["Animalia", "Arthropoda", "Insecta", *values])


def resolve_keys(connection: Connection, lookups: NameLookups) -> list[KeyResult]:
    """One key per distinct label of the catalogued images' metadata records, upgraded."""
    results = []
    for label in connection.execute(text("""
            SELECT DISTINCT m."order", m.family, m.genus, m.species
            FROM images AS i JOIN bioscan_metadata AS m ON m.image_file = i.bioscan_filename
            WHERE i.source = 'bioscan' ORDER BY 1, 2, 3, 4""")):
        taxon, changes = lookups.upgrade(label_taxon(*label))
        results.append(KeyResult(NAME, tuple(label), taxon, None, changes))
    return results

"""EOL's media manifest (`https://eol.org/data/media_manifest.tgz`): one row per medium, content id → license.

The archive holds `media_manifest_1.csv`, `media_manifest_2.csv`, …; the original pipeline read them in that
order and skipped a header only in the first (the later files continue it). Here the setting names one CSV
file or a folder of `media_manifest*.csv` files, read in the number order of their names; a file whose first
row is a header (its first cell is not a number) names its own columns, a file without one takes the columns
of the last header seen, or the manifest's six columns when none was seen. Columns are matched by name, case
and punctuation ignored, so later manifests that add `License Link`, `Title` or `md5` are read too.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from etl.sources.common import RowReject
from etl.sources.licensing import ProvenanceRecord

# The manifest's columns in their order, as published (EOL content ID, EOL page ID, Medium Source URL,
# EOL Full-Size Copy URL, License Name, Copyright Owner).
DEFAULT_COLUMNS = ("content_id", "page_id", "source_url", "copy_url", "license_name", "rights_holder")
# Header names (normalised: lower case, runs of other characters as one `_`) → field.
HEADER_FIELDS = {
    "eol_content_id": "content_id", "content_id": "content_id",
    "eol_page_id": "page_id", "page_id": "page_id",
    "medium_source_url": "source_url", "source_url": "source_url",
    "eol_full_size_copy_url": "copy_url", "full_size_copy_url": "copy_url", "copy_url": "copy_url",
    "license_name": "license_name", "license": "license_name",
    "copyright_owner": "rights_holder", "owner": "rights_holder", "rights_holder": "rights_holder",
    "license_link": "license_link", "license_url": "license_link",
    "title": "title", "md5": "md5", "md5sum": "md5",
}


def _header_key(cell: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", cell.strip().lstrip("\ufeff").lower()).strip("_")


def manifest_files(path: Path) -> list[Path]:
    """The manifest files `path` names: itself, or a folder's `media_manifest*.csv` in the number order of their
    names (`media_manifest_2.csv` before `media_manifest_10.csv`)."""
    if path.is_file():
        return [path]

    def number(file: Path) -> tuple[int, str]:
        digits = re.findall(r"\d+", file.name)
        return (int(digits[-1]) if digits else 0, file.name)

    return sorted(path.glob("media_manifest*.csv"), key=number)


def read_manifest(path: Path) -> Iterator[ProvenanceRecord | RowReject]:
    """Every row of the manifest files at `path` as a record keyed by (content id,), or a reject. Row numbers
    run on through the files, so a reject's number is unique; its raw text starts with the file's name."""
    columns: tuple[str | None, ...] = DEFAULT_COLUMNS
    row_no = 0
    for file in manifest_files(path):
        with open(file, encoding="utf-8", newline="") as handle:
            for index, cells in enumerate(csv.reader(handle)):
                if not cells:
                    continue
                if index == 0 and not cells[0].strip().lstrip("\ufeff").isdigit():
                    columns = tuple(HEADER_FIELDS.get(_header_key(cell)) for cell in cells)
                    continue
                row_no += 1
                raw = f"{file.name}: " + ",".join(cells)
                if len(cells) != len(columns):
                    yield RowReject(row_no, f"expected {len(columns)} fields", raw)
                    continue
                fields = {name: value.strip() for name, value in zip(columns, cells, strict=True) if name}
                content_id = fields.get("content_id", "")
                if not content_id.isdigit():
                    yield RowReject(row_no, "content id is not a whole number", raw)
                    continue
                yield ProvenanceRecord(
                    (int(content_id),), license_name=fields.get("license_name", ""),
                    license_link=fields.get("license_link", ""), rights_holder=fields.get("rights_holder", ""),
                    source_url=fields.get("source_url", ""), copy_url=fields.get("copy_url", ""),
                    title=fields.get("title", ""), md5=fields.get("md5", ""))

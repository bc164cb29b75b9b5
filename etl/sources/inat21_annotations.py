"""iNat21's COCO-style annotation files (`train.json`, `val.json`): each image's license and rights holder.

`images[]` entries carry `file_name` (`train/<class folder>/<uuid>.jpg`), `license` (an id into the top-level
`licenses[]` list of `{id, name, url}`, which comes last in the file) and `rights_holder`. The real
`train.json` is over a gigabyte, so both arrays are streamed item by item, never loaded whole: one pass finds
`licenses[]`, a second reads `images[]`. A `license` given as text instead of an id is taken as the name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from etl.sources.common import RowReject
from etl.sources.licensing import ProvenanceRecord

CHUNK = 1 << 20
SEPARATORS = re.compile(r"[\s,]*")
FILE_NAME = re.compile(r"^(?:[^/]+/)?(\d{5})_[^/]+/([^/]+\.jpg)$")
ANNOTATION_FILES = ("train.json", "val.json")


def stream_array(handle: IO[str], key: str, chunk: int = CHUNK) -> Iterator[object]:
    """The items of the top-level JSON array called `key` in the open file, one at a time (nothing if absent)."""
    decoder = json.JSONDecoder()
    pattern = re.compile('"' + re.escape(key) + r'"\s*:\s*\[')
    buffer = ""
    while True:
        match = pattern.search(buffer)
        if match:
            buffer = buffer[match.end():]
            break
        more = handle.read(chunk)
        if not more:
            return
        buffer = buffer[-(len(key) + 64):] + more
    # Items are decoded in place (an index into the buffer, which is cut and refilled only when an item runs
    # past its end), so a large buffer is not copied once per item.
    position = 0
    while True:
        position = SEPARATORS.match(buffer, position).end()  # type: ignore[union-attr]
        if position == len(buffer):
            buffer, position = handle.read(chunk), 0
            if not buffer:
                raise ValueError(f"the array {key!r} is not closed")
            continue
        if buffer[position] == "]":
            return
        try:
            item, position = decoder.raw_decode(buffer, position)
        except json.JSONDecodeError:
            more = handle.read(chunk)
            if not more:
                raise
            buffer, position = buffer[position:] + more, 0
            continue
        yield item


def annotation_files(path: Path) -> list[Path]:
    """`path` itself, or the `train.json` and `val.json` of a folder."""
    return [path] if path.is_file() else [path / name for name in ANNOTATION_FILES if (path / name).is_file()]


def read_annotations(path: Path) -> Iterator[ProvenanceRecord | RowReject]:
    """Every `images[]` entry of the annotation files at `path` as a record keyed by (class number, file name),
    or a reject. Record numbers run on through the files."""
    record_no = 0
    for file in annotation_files(path):
        with open(file, encoding="utf-8") as handle:
            licenses = {item.get("id"): item for item in stream_array(handle, "licenses") if isinstance(item, dict)}
        with open(file, encoding="utf-8") as handle:
            for image in stream_array(handle, "images"):
                record_no += 1
                raw = f"{file.name}: " + json.dumps(image, ensure_ascii=False)
                if not isinstance(image, dict):
                    yield RowReject(record_no, "image entry is not an object", raw)
                    continue
                match = FILE_NAME.match(str(image.get("file_name", "")))
                if not match:
                    yield RowReject(record_no, "file_name is not train/<class folder>/<uuid>.jpg", raw)
                    continue
                license_value = image.get("license")
                entry = licenses.get(license_value) if isinstance(license_value, int) else None
                if entry is not None:
                    name, link = str(entry.get("name") or ""), str(entry.get("url") or "")
                elif isinstance(license_value, int):
                    name, link = f"license id {license_value} (not in licenses[])", ""
                else:
                    name, link = str(license_value or ""), ""
                yield ProvenanceRecord((int(match.group(1)), match.group(2)), license_name=name.strip(),
                                       license_link=link.strip(),
                                       rights_holder=str(image.get("rights_holder") or "").strip())

"""EOL media cargo archives: ``<root>/*.tar.gz`` whose members are
``<content_id>_<page_id>_eol-full-size-copy.jpg``.

Archives are read as gzip streams, never extracted. For each member we keep where its bytes start in the
uncompressed tar stream, so the write stage can seek straight to it through a gzip index.
An archive is one listing unit.
"""

from __future__ import annotations

import os
import re
import tarfile
import zlib
from pathlib import Path

from etl.ids import eol_image_id
from etl.sources.common import COMMON_FIELDS, SNIFF_BYTES, Reject, UnitResult, make_row, sniff

FIELDS = (*COMMON_FIELDS, "member", "member_offset", "eol_content_id", "eol_page_id")
ARCHIVE_SUFFIX = ".tar.gz"
# Start-anchored like the original: digits _ digits _eol … jpg (both `_eol-full-size-copy` and the HF
# card's `_eol_full-size-copy` spellings match).
MEMBER_PATTERN = re.compile(r"^(\d+)_(\d+)_eol.*jpg$")
HF_MEMBER_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jpg$")


def parse_member(name: str) -> tuple[int, int]:
    """(content id, page id) of a member name; ValueError saying why it does not match.

    >>> parse_member("12784812_51655800_eol-full-size-copy.jpg")
    (12784812, 51655800)
    """
    basename = name.rsplit("/", 1)[-1]
    match = MEMBER_PATTERN.match(basename)
    if match:
        return int(match.group(1)), int(match.group(2))
    if HF_MEMBER_PATTERN.match(basename):
        raise ValueError("member is named by treeoflife_id (Hugging Face release form); this needs the "
                         "published mapping and is not supported")
    raise ValueError("member name is not <content_id>_<page_id>_eol-full-size-copy.jpg")


def list_units(root: Path) -> tuple[list[str], list[Reject]]:
    """The `.tar.gz` archives under `root` in name order, and entries that are not archives."""
    units: list[str] = []
    rejects: list[Reject] = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=True) and entry.name.endswith(ARCHIVE_SUFFIX):
                units.append(entry.name)
            else:
                rejects.append(Reject(entry.name, f"not a {ARCHIVE_SUFFIX} archive"))
    units.sort()
    return units, sorted(rejects)


def scan_unit(root: str, unit: str, check_images: bool = True) -> UnitResult:
    """Catalogue the members of one archive, streaming it once."""
    result = UnitResult()
    path = os.path.join(root, unit)
    members = 0
    try:
        with open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as archive:
            for member in archive:
                members += 1
                where = f"{unit}:{member.name}"
                if not member.isfile():
                    if not member.isdir():
                        result.rejects.append(Reject(where, "archive member is not a regular file"))
                    continue
                try:
                    content_id, page_id = parse_member(member.name)
                except ValueError as exc:
                    result.rejects.append(Reject(where, str(exc)))
                    continue
                suspect = None
                if check_images:
                    handle = archive.extractfile(member)
                    data = handle.read() if handle else b""
                    fatal, suspect = sniff(data[:SNIFF_BYTES], data[-SNIFF_BYTES:], member.size)
                    if fatal:
                        result.rejects.append(Reject(where, fatal))
                        continue
                result.rows.append(make_row(
                    eol_image_id(content_id, page_id), unit, member.size, suspect,
                    member=member.name, member_offset=member.offset_data,
                    eol_content_id=content_id, eol_page_id=page_id,
                ))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        result.rejects.append(Reject(unit, f"truncated or unreadable archive after {members} members: {reason}"))
    return result

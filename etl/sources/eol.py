"""EOL archives: ``<root>/*.tar.gz`` whose members are ``<content_id>_<page_id>_eol-full-size-copy.jpg`` (the
media cargo archive) or ``<treeoflife_id>.jpg`` (the published release's `dataset/EOL/image_set_NN.tar.gz`).

A release-layout member's content and page ids come from the release map (`tol import-release`): the ingest
fills them in when it merges the listing and rejects members the map lacks; with no map imported it refuses
such members (etl/release/idmap.py). Both layouts may share a root once a map is imported: each member then
has the published id where the map has one, and the same image in both forms is one identity (a duplicate).

Archives are read as gzip streams, never extracted. For each member we keep where its bytes start in the
uncompressed tar stream, so the write stage can seek straight to it (etl/sources/eol_archives.py).
An archive is one listing unit. An EOL page is one naming key, placed by the Dynamic Hierarchy.
"""

from __future__ import annotations

import os
import re
import tarfile
import zlib
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl.ids import eol_image_id
from etl.sources.common import (
    COMMON_FIELDS,
    SNIFF_BYTES,
    KeyResult,
    MetadataFile,
    NameLookups,
    NamesTable,
    ReadOptions,
    Reject,
    SourceSetting,
    UnitResult,
    make_row,
    sniff,
)
from etl.sources.eol_archives import ACCESS_SETTING, ArchiveStore
from etl.sources.eol_manifest import read_manifest
from etl.sources.licensing import ProvenanceHook

NAME = "eol"
ORDER = 1
ROOT = SourceSetting("eol_root", "folder of EOL archives (*.tar.gz): the media cargo archive, or a release's "
                                 "dataset/EOL")
UNIT_NAME = "archives"
INGEST_HELP = """Catalogue the members of the EOL archives under ROOT.

    Archives are streamed, never extracted. ROOT defaults to the `eol_root` setting. Members are
    <content_id>_<page_id>_eol-full-size-copy.jpg, or <treeoflife_id>.jpg as a published release names them:
    those take their content and page ids from the map `tol import-release` loaded (without one they are
    rejected, saying so).

    \b
    Example:
      tol ingest eol /data/eol/media_cargo_archive
    """
FIELDS = (*COMMON_FIELDS, "member", "member_offset", "eol_content_id", "eol_page_id")
STAGE_TYPES = {"member": "TEXT", "member_offset": "BIGINT", "eol_content_id": "BIGINT", "eol_page_id": "BIGINT"}
METADATA: MetadataFile | None = None
READ_SETTINGS = (ACCESS_SETTING,)
# Each image's license, owner and URLs: the media manifest's rows, matched by content id (etl/provenance.py).
PROVENANCE = ProvenanceHook(
    "Encyclopedia of Life", "@misc{eol, author = {{Encyclopedia of Life (EOL)}}, url = {https://eol.org}}",
    setting=SourceSetting("eol_media_manifest", "EOL media manifest: a media_manifest*.csv file or their folder"),
    identity=("eol_content_id",), identity_types=("BIGINT",), read=read_manifest)
NAMES = NamesTable("names_eol_pages", ("page_id",), ("""
    UPDATE images SET taxon_id = n.taxon_id, unnamed_reason = n.unnamed_reason
    FROM names_eol_pages AS n
    WHERE images.source = 'eol' AND n.page_id = images.eol_page_id AND {changed}""",))
ARCHIVE_SUFFIX = ".tar.gz"
# Start-anchored like the original: digits _ digits _eol … jpg (both `_eol-full-size-copy` and the HF
# card's `_eol_full-size-copy` spellings match).
MEMBER_PATTERN = re.compile(r"^(\d+)_(\d+)_eol.*jpg$")
HF_MEMBER_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jpg$")


def parse_member(name: str) -> tuple[int, int] | str:
    """(content id, page id) of a media-cargo member name, or the treeoflife_id of a release-layout member
    (`<treeoflife_id>.jpg`, whose ids come from the imported release map); ValueError saying why it is neither.

    >>> parse_member("12784812_51655800_eol-full-size-copy.jpg")
    (12784812, 51655800)
    >>> parse_member("image_set_01/0f3c1b2e-9d4a-4b1e-8c3d-5a6b7c8d9e0f.jpg")
    '0f3c1b2e-9d4a-4b1e-8c3d-5a6b7c8d9e0f'
    """
    basename = name.rsplit("/", 1)[-1]
    match = MEMBER_PATTERN.match(basename)
    if match:
        return int(match.group(1)), int(match.group(2))
    if HF_MEMBER_PATTERN.match(basename):
        return basename[:-len(".jpg")]
    raise ValueError("member name is not <content_id>_<page_id>_eol-full-size-copy.jpg nor <treeoflife_id>.jpg")


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
                    parsed = parse_member(member.name)
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
                if isinstance(parsed, str):
                    # Release layout: the id is the name; content and page ids come from the release map when
                    # the listing is merged (etl/release/idmap.py), which rejects members it lacks.
                    result.rows.append(make_row(parsed, unit, member.size, suspect, member=member.name,
                                                member_offset=member.offset_data))
                    continue
                content_id, page_id = parsed
                result.rows.append(make_row(
                    eol_image_id(content_id, page_id), unit, member.size, suspect,
                    member=member.name, member_offset=member.offset_data,
                    eol_content_id=content_id, eol_page_id=page_id,
                ))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        result.rejects.append(Reject(unit, f"truncated or unreadable archive after {members} members: {reason}"))
    return result


def open_store(root: Path, options: ReadOptions) -> ArchiveStore:
    """Members are read at their catalogued offsets, as setting `eol_access` says."""
    return ArchiveStore(root, options)


def resolve_keys(connection: Connection, lookups: NameLookups) -> list[KeyResult]:
    """One key per page, placed by the Dynamic Hierarchy (or the scraped names), then upgraded."""
    pages = {page for (page,) in connection.execute(text(
        "SELECT DISTINCT eol_page_id FROM images WHERE source = 'eol'"))}
    taxon_of = lookups.eol_page_taxa(pages)
    results = []
    for page in sorted(pages):
        taxon = taxon_of(page)
        if not any(taxon):
            results.append(KeyResult(NAME, (page,), None, f"EOL page {page} has no taxon in the Dynamic "
                                                          "Hierarchy or the scraped names"))
            continue
        taxon, changes = lookups.upgrade(taxon)
        results.append(KeyResult(NAME, (page,), taxon, None, changes))
    return results

"""What every source module produces and uses: catalog rows and rejects, one listing unit at a time; its
settings; how its image bytes are read; and the naming keys it gives the taxonomy stage.

A source's files are listed in *units* (an iNat21 class folder, a BIOSCAN part, an EOL archive) so that
units can be scanned in parallel processes and their rows streamed into the catalog in batches.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, Protocol

from sqlalchemy import text

from etl.ids import split_hash
from etl.naming import Taxon

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# The first bytes of the image formats Pillow will be asked to open.
IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"RIFF", "webp"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
SNIFF_BYTES = 16


class ImageRow(NamedTuple):
    """One catalogued image, in the column order of the ingest staging table."""

    id: str
    path: str
    member: str | None
    member_offset: int | None
    byte_size: int
    eol_content_id: int | None
    eol_page_id: int | None
    inat21_filename: str | None
    inat21_cls_name: str | None
    inat21_cls_num: int | None
    bioscan_part: int | None
    bioscan_filename: str | None
    split_hash: int
    suspect: str | None
    source_mtime_ns: int | None  # filled by `stamp_rows` after the source's scan, not by the source
    content_sha256: str | None


STAGE_COLUMNS = ImageRow._fields
# The fields every source fills; each source module's FIELDS adds its own identity fields. The rest stay NULL,
# so scratch files (etl/spill.py) need not carry them.
COMMON_FIELDS = ("id", "path", "byte_size", "split_hash", "suspect")
# The fields ingest fills after every source's scan (`stamp_rows`); scratch files carry them too.
STAMP_FIELDS = ("source_mtime_ns", "content_sha256")


class Reject(NamedTuple):
    """A file, member or folder that could not be catalogued, and why."""

    path: str
    reason: str


@dataclass
class UnitResult:
    """What scanning one unit produced."""

    rows: list[tuple] = field(default_factory=list)  # in ImageRow's field order
    rejects: list[Reject] = field(default_factory=list)
    # When the rows were written to a scratch file instead (etl/spill.py): how many, where, in which phase.
    spilled_rows: int = 0
    spill_file: str | None = None
    phase: int = 0

    @property
    def n_rows(self) -> int:
        """How many images the unit holds, wherever its rows are."""
        return len(self.rows) + self.spilled_rows


def make_row(image_id: str, path: str, byte_size: int, suspect: str | None = None, *,
             member: str | None = None, member_offset: int | None = None, eol_content_id: int | None = None,
             eol_page_id: int | None = None, inat21_filename: str | None = None, inat21_cls_name: str | None = None,
             inat21_cls_num: int | None = None, bioscan_part: int | None = None,
             bioscan_filename: str | None = None) -> tuple:
    """A catalog row in ImageRow's field order, with the split hash filled in.

    A plain tuple rather than an ImageRow: rows cross process boundaries by the million, and a named tuple
    costs twice as much to unpickle.
    """
    return (image_id, path, member, member_offset, byte_size, eol_content_id, eol_page_id, inat21_filename,
            inat21_cls_name, inat21_cls_num, bioscan_part, bioscan_filename, split_hash(image_id), suspect, None, None)


_PATH, _MEMBER, _MEMBER_OFFSET, _SIZE = (STAGE_COLUMNS.index(name)
                                         for name in ("path", "member", "member_offset", "byte_size"))
_MTIME, _CHECKSUM = STAGE_COLUMNS.index("source_mtime_ns"), STAGE_COLUMNS.index("content_sha256")


def file_stamp(path: str, *, checksum: bool) -> tuple[int, str | None]:
    """(mtime in ns, sha256 or None) of a file: what ingest records so the write stage can tell a changed file."""
    mtime = os.stat(path).st_mtime_ns
    return mtime, (sha256_file(path) if checksum else None)


def member_sha256s(archive: str, members: list[tuple[int, int]]) -> dict[int, str]:
    """offset → sha256 of the `(offset, size)` members of an archive (offsets into its uncompressed stream),
    read in one forward pass. A member cut short by a damaged archive gets no hash (nor does any after it)."""
    import gzip
    import zlib

    digests: dict[int, str] = {}
    opener = gzip.open if archive.endswith(".gz") else open
    try:
        with opener(archive, "rb") as handle:
            for offset, size in sorted(members):
                handle.seek(offset)
                digest, left = hashlib.sha256(), size
                while left > 0:
                    block = handle.read(min(left, 1 << 20))
                    if not block:
                        break
                    digest.update(block)
                    left -= len(block)
                if left:
                    break
                digests[offset] = digest.hexdigest()
    except (OSError, EOFError, zlib.error):
        pass
    return digests


def stamp_rows(root: str, result: UnitResult, *, checksum: bool = False) -> UnitResult:
    """Fill each row's mtime (a plain file's own; an archive member's, its archive's) and, with `checksum`, its
    sha256, in place. Kept apart from the sources' listing: every source gets it, none need know of it. A file
    gone since it was listed keeps NULLs (the next ingest sees it missing)."""
    archives: dict[str, list[int]] = {}
    for number, row in enumerate(result.rows):
        if row[_MEMBER] is not None:
            archives.setdefault(row[_PATH], []).append(number)
            continue
        try:
            mtime, digest = file_stamp(os.path.join(root, row[_PATH]), checksum=checksum)
        except OSError:
            continue
        result.rows[number] = (*row[:_MTIME], mtime, digest, *row[_CHECKSUM + 1:])
    for archive, numbers in archives.items():
        location = os.path.join(root, archive)
        try:
            mtime = os.stat(location).st_mtime_ns
            digests = member_sha256s(location, [(result.rows[n][_MEMBER_OFFSET], result.rows[n][_SIZE])
                                                for n in numbers]) if checksum else {}
        except OSError:
            continue
        for n in numbers:
            row = result.rows[n]
            result.rows[n] = (*row[:_MTIME], mtime, digests.get(row[_MEMBER_OFFSET]), *row[_CHECKSUM + 1:])
    return result


@dataclass(frozen=True)
class StampedScan:
    """A source's `scan_unit` followed by `stamp_rows` (picklable, for listing processes)."""

    scan: Callable[[Any], UnitResult]
    root: str
    checksum: bool = False

    def __call__(self, unit: Any) -> UnitResult:
        """Scan `unit`, then stamp its rows."""
        return stamp_rows(self.root, self.scan(unit), checksum=self.checksum)


def scan_image_files(root: str, unit: str, file_pattern, pattern_reason: str, check_images: bool):
    """Yield (file name, relative path, size, suspect note) for each image file of folder `unit`, in name order;
    yield (None, relative path, None, reason) for each entry that is rejected."""
    with os.scandir(os.path.join(root, unit)) as entries:
        listed = sorted((entry.name, entry) for entry in entries)
    for filename, entry in listed:
        relative = f"{unit}/{filename}"
        if not entry.is_file(follow_symlinks=True):
            yield None, relative, None, "not a regular file"
            continue
        if not file_pattern.match(filename):
            yield None, relative, None, pattern_reason
            continue
        size = entry.stat(follow_symlinks=True).st_size
        fatal, suspect = sniff_file(entry.path, size) if check_images else (None, None)
        if fatal:
            yield None, relative, None, fatal
            continue
        yield filename, relative, size, suspect


def sha256_file(path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sniff(head: bytes, tail: bytes, size: int) -> tuple[str | None, str | None]:
    """Check an image's first and last bytes: (fatal reason, suspect note), either may be None.

    Only what makes a file certainly unusable is fatal (empty, not an image at all); a JPEG without its
    end-of-image marker may still decode in part, so it is catalogued with a note and judged when written.
    """
    if size == 0:
        return "empty file (0 bytes)", None
    kind = next((name for magic, name in IMAGE_MAGIC if head.startswith(magic)), None)
    if kind is None:
        return f"not an image: unknown format (first bytes {head[:8].hex()})", None
    if kind == "jpeg" and not tail.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        return None, "JPEG without end-of-image marker (truncated?)"
    if kind != "jpeg":
        return None, f"{kind.upper()} data in a .jpg file"
    return None, None


def sniff_file(path: str, size: int) -> tuple[str | None, str | None]:
    """`sniff` a file on disk; an unreadable file is fatal."""
    if size == 0:
        return sniff(b"", b"", 0)
    try:
        with open_regular_file(path) as handle:
            head = handle.read(SNIFF_BYTES)
            if size > SNIFF_BYTES:
                handle.seek(max(size - SNIFF_BYTES, 0))
            tail = handle.read(SNIFF_BYTES) if size > SNIFF_BYTES else head
    except NotRegularFile:
        return "not a regular file", None
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}", None
    return sniff(head, tail, size)


# ------------------------------------------------------------------------------------------------ settings


class SourceSetting(NamedTuple):
    """A setting a source adds to the configuration (etl.config makes it a `Setting`)."""

    name: str
    help: str
    kind: str = "path"
    default: Any = None
    choices: tuple[str, ...] = ()


class RowReject(NamedTuple):
    """A row of a reference or metadata file that could not be read: its line (or record) number, why, and the
    raw text."""

    line_no: int
    reason: str
    raw: str


RAW_LINE_LIMIT = 300  # how much of a rejected line `ref_rejects` keeps


def record_row_rejects(connection: Connection, resource: str, rejects: list[RowReject]) -> None:
    """Replace the rejects of `resource` in `ref_rejects` with `rejects`."""
    connection.execute(text("DELETE FROM ref_rejects WHERE resource = :r"), {"r": resource})
    if rejects:
        connection.execute(text("INSERT INTO ref_rejects (resource, line_no, reason, raw) VALUES (:r, :n, :why, :raw)"),
                           [{"r": resource, "n": r.line_no, "why": r.reason, "raw": r.raw[:RAW_LINE_LIMIT]}
                            for r in rejects])


@dataclass(frozen=True)
class MetadataFile:
    """A file of per-image records a source comes with, in a table of its own; ingest checks the listed images
    against it, and `tol taxa load` reloads it."""

    setting: SourceSetting
    title: str  # what messages call it, e.g. "BIOSCAN metadata"
    option_help: str  # help of the ingest command's --metadata option
    # Replace the source's metadata table with the records of the file; returns how many it holds.
    load: Callable[[Connection, Path], int]
    # Reject staged images without a record (deleting them from the staging table `stage`) and report records
    # without an image: (connection, stage, file, reject, base names of files already rejected).
    check_listing: Callable[[Connection, str, Path, Callable[[Reject], None], Collection[str]], None]


# ---------------------------------------------------------------------------------------------- image bytes


@dataclass(frozen=True)
class ReadOptions:
    """What shard writers were told about reading sources: a cache folder, and the sources' read settings."""

    cache_dir: Path
    settings: Mapping[str, Any] = field(default_factory=dict)
    # Called while a long step of a read (restaging an archive) makes progress, so the reader's time limit
    # counts from the last sign of life rather than from the start.
    heartbeat: Callable[[], None] | None = None
    # Temporaries in the cache older than this, that no live writer holds, are left by killed processes.
    stale_seconds: float = 3600.0


class ImageStore(Protocol):
    """Where one source keeps its image bytes, opened on one root."""

    def read(self, path: str, member_offset: int | None, byte_size: int) -> bytes:
        """The bytes of one catalogued image (OSError when they cannot be read)."""
        ...

    def close(self) -> None:
        """Release whatever the store holds open."""
        ...


class NotRegularFile(OSError):
    """A source path that is not a regular file (a FIFO, a device, a folder): never read from."""


def _regular_descriptor(path: str | os.PathLike[str]) -> tuple[int, int]:
    """A descriptor of the regular file `path` and its size, opened without blocking (a FIFO would wait for a
    writer) and checked on the descriptor, so a FIFO, device or folder raises `NotRegularFile` and is never
    read."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            mode = status.st_mode
            kind = "FIFO" if stat.S_ISFIFO(mode) else "folder" if stat.S_ISDIR(mode) else "device or socket"
            raise NotRegularFile(0, kind, os.fspath(path))
        return descriptor, status.st_size
    except BaseException:
        os.close(descriptor)
        raise


def open_regular_file(path: str | os.PathLike[str]) -> BinaryIO:
    """Open the regular file `path` for reading (`NotRegularFile` for anything else, see `_regular_descriptor`)."""
    return os.fdopen(_regular_descriptor(path)[0], "rb")


def read_regular_file(path: str | os.PathLike[str]) -> bytes:
    """The whole of the regular file `path` (`NotRegularFile` for anything else, see `_regular_descriptor`). No
    file object: read once an image, a buffered file object cost as much as the read."""
    descriptor, size = _regular_descriptor(path)
    try:
        data = os.read(descriptor, size + 1)
        if len(data) != size:  # the file changed size since the fstat (or a short read): read to its end
            parts = [data]
            while chunk := os.read(descriptor, 1 << 20):
                parts.append(chunk)
            data = b"".join(parts)
        return data
    finally:
        os.close(descriptor)


class FileStore:
    """Images that are plain files under the source root, at their catalogued path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root_text = os.fspath(root)  # joined as text: a pathlib path per image costs as much as the read

    def read(self, path: str, member_offset: int | None, byte_size: int) -> bytes:
        """The whole file (`NotRegularFile` for a FIFO, device or folder)."""
        return read_regular_file(os.path.join(self._root_text, path))

    def unit_of(self, path: str) -> Path:
        """The listing unit holding the image: its folder."""
        return (self.root / path).parent

    def close(self) -> None:
        """Nothing is kept open."""


# -------------------------------------------------------------------------------------------------- naming

@dataclass
class KeyResult:
    """The taxon resolved for one naming key of one source."""

    source: str
    key: tuple
    taxon: Taxon | None
    reason: str | None = None
    changes: list[str] = field(default_factory=list)
    # A common name the source itself gives the key; the reference files' name, if any, comes first.
    common_name: str = ""


class NameLookups(Protocol):
    """What the taxonomy stage offers a source for resolving its naming keys."""

    def upgrade(self, taxon: Taxon) -> tuple[Taxon, list[str]]:
        """Fill the empty higher ranks of a taxon from ITIS and the resolver; also the changes made."""
        ...

    def eol_page_taxa(self, pages: set[int]) -> Callable[[int], Taxon]:
        """The taxon of each of `pages` from the EOL Dynamic Hierarchy and scraped names (all slots empty when
        neither knows the page)."""
        ...


class NamesTable(NamedTuple):
    """Where a source's resolved naming keys are kept, and how its images take their names from them."""

    table: str
    key_columns: tuple[str, ...]
    # UPDATE statements naming the source's images; `{changed}` stands for "the image's name differs from n's".
    name_images: tuple[str, ...]
    # Other tables those statements read, analysed before they run.
    joined_tables: tuple[str, ...] = ()

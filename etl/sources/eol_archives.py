"""Reading EOL members from their `.tar.gz` archives, for the write stage.

A shard mixes images from every archive, so reads come in no useful order. Two ways to read them
(setting `eol_access`):

* `restage` (default): each archive is decompressed once into the cache folder as a plain tar; a member is
  then one seek and one read at the offset the ingest recorded, whatever the archive's size. JPEG data does
  not compress, so this needs about as much disk as the archives themselves.
* `gzip-index`: an `indexed_gzip` seek index per archive, kept in the cache folder; each read inflates up to
  the index spacing (4 MiB) from the nearest seek point, and costs more than a whole write of a small image.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from stat import S_ISREG
from typing import BinaryIO

from etl.atomic import atomic_path, atomic_write, remove_stale_temporaries
from etl.sources.common import NotRegularFile, ReadOptions, SourceSetting

# How many archives a reader keeps open. A restaged tar is just a file handle, so a reader keeps every archive
# of a real collection open (the HF release has 63) and never reopens one per image; a gzip index holds
# 32 KiB per seek point in memory, so only a few stay open.
OPEN_ARCHIVES = {"restage": 256, "gzip-index": 4}
INDEX_SPACING = 4 * 1024 * 1024
EOL_ACCESS = tuple(OPEN_ARCHIVES)  # the values of the `eol_access` setting
COPY_BUFFER = 4 * 1024 * 1024
ACCESS_SETTING = SourceSetting(
    "eol_access",
    "how shard writers read EOL members: `restage` (each archive decompressed once into cache_dir, then "
    "one seek per image; needs about the archives' size on disk) or `gzip-index` (seek indexes only, "
    "each read inflates up to 4 MiB)", kind="str", default="restage", choices=EOL_ACCESS)


class ArchiveStore:
    """Reads EOL members at their catalogued offsets; keeps archives open between reads."""

    def __init__(self, root: Path, options: ReadOptions) -> None:
        self.root = root
        self.cache_dir = options.cache_dir
        self.access = options.settings.get(ACCESS_SETTING.name, ACCESS_SETTING.default)
        self.heartbeat = options.heartbeat
        self._archives: OrderedDict[str, BinaryIO] = OrderedDict()
        remove_stale_cache(self.cache_dir, options.stale_seconds)

    def unit_of(self, path: str) -> Path:
        """The listing unit holding a member: its archive."""
        return self.root / path

    def read(self, path: str, member_offset: int | None, byte_size: int) -> bytes:
        """The bytes of the member at `member_offset` of archive `path` (OSError when they cannot be read)."""
        archive = self._archive(self.root / path)
        archive.seek(member_offset or 0)
        data = archive.read(byte_size)
        if len(data) != byte_size:
            raise OSError(f"archive {path} ends before the member's {byte_size} bytes")
        return data

    def _cache_path(self, archive: Path, folder: str, suffix: str) -> Path:
        # Size and modification time in the name: a replaced archive never meets a stale copy.
        stat = archive.stat()
        if not S_ISREG(stat.st_mode):
            raise NotRegularFile(0, "archive is not a regular file", str(archive))
        return self.cache_dir / folder / f"{archive.name}.{stat.st_size}.{int(stat.st_mtime)}{suffix}"

    def _archive(self, path: Path) -> BinaryIO:
        key = str(path)
        if key in self._archives:
            self._archives.move_to_end(key)
            return self._archives[key]
        archive = self._open_restaged(path) if self.access == "restage" else self._open_indexed(path)
        self._archives[key] = archive
        while len(self._archives) > OPEN_ARCHIVES[self.access]:
            _, oldest = self._archives.popitem(last=False)
            oldest.close()
        return archive

    def _open_restaged(self, path: Path) -> BinaryIO:
        target = self._cache_path(path, "eol-tar", ".tar")
        if not target.exists():
            restage(path, target, self.heartbeat)
        return open(target, "rb")

    def _open_indexed(self, path: Path) -> BinaryIO:
        import indexed_gzip

        index = self._cache_path(path, "eol-gzip-index", ".gzidx")
        if index.exists():
            return indexed_gzip.IndexedGzipFile(str(path), spacing=INDEX_SPACING, index_file=str(index))
        archive = indexed_gzip.IndexedGzipFile(str(path), spacing=INDEX_SPACING)
        archive.build_full_index()
        # Several workers may build the same index; the last rename wins.
        with atomic_path(index) as partial:
            archive.export_index(str(partial))
        return archive

    def close(self) -> None:
        """Close every open archive."""
        for archive in self._archives.values():
            archive.close()
        self._archives.clear()


def _lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.lock")


def remove_stale_cache(cache_dir: Path, older_than: float) -> list[Path]:
    """Delete the partial restages and indexes in `cache_dir` left by killed processes: temporaries older than
    `older_than` seconds whose target's restage lock nobody holds. Returns what was deleted."""
    removed: list[Path] = []
    now = time.time()
    for folder in (cache_dir / "eol-tar", cache_dir / "eol-gzip-index"):
        if not folder.is_dir():
            continue
        for partial in folder.glob(".*.tmp"):
            target_name = partial.name[1:].rsplit(".", 2)[0]  # .NAME.TAG.tmp
            try:
                if now - partial.stat().st_mtime < older_than:
                    continue
                with open(_lock_path(folder / target_name), "a+b") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError while a writer holds it
                    partial.unlink(missing_ok=True)
                    removed.append(partial)
            except OSError:
                continue
    return removed


def restage(archive: Path, target: Path, heartbeat: Callable[[], None] | None = None) -> None:
    """Decompress `archive` into the plain tar `target`, atomically, once across concurrent workers.

    A truncated archive is restaged as far as it decompresses: its catalogued members all lie before the cut
    (the ingest stopped listing there), and a read past the end fails like a read of the archive would. Any
    failure (a full cache) removes the partial file; `heartbeat` is called after every block written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(_lock_path(target), "a+b") as lock:
        # The other workers wait rather than decompress it again. On a filesystem without flock, concurrent
        # restaging only wastes work: the rename stays atomic.
        with contextlib.suppress(OSError):
            fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return
        remove_stale_temporaries(target)  # we hold the lock: any partial restage is a killed writer's
        with atomic_write(target) as out, open(archive, "rb") as raw:
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)  # gzip framing
            try:
                while chunk := raw.read(COPY_BUFFER):
                    out.write(inflater.decompress(chunk))
                    if heartbeat is not None:
                        heartbeat()
                    while inflater.eof and inflater.unused_data:  # a multi-member gzip file
                        rest = inflater.unused_data
                        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
                        out.write(inflater.decompress(rest))
                out.write(inflater.flush())
            except zlib.error:
                pass  # corrupt from here on: keep what decompressed

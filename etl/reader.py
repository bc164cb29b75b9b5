"""Reading a catalogued image's bytes from where its source keeps it.

iNat21 and BIOSCAN images are files under their source root. EOL images are members of `.tar.gz` archives:
we seek straight to a member's bytes through an `indexed_gzip` seek index, built once per archive and kept in
the cache folder, so a shard that mixes images from every archive never decompresses an archive from the
start.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl.errors import TolError

OPEN_ARCHIVES = 4
INDEX_SPACING = 4 * 1024 * 1024


def source_roots(engine: Engine, configured: dict[str, Path | None]) -> dict[str, Path]:
    """Each source's root: the configured one if set, else the root of its latest finished ingest."""
    roots: dict[str, Path] = {}
    with engine.connect() as connection:
        for source, root in connection.execute(text("""
                SELECT r.source, r.root FROM ingest_runs AS r
                WHERE r.status = 'finished' AND r.id = (
                    SELECT MAX(q.id) FROM ingest_runs AS q WHERE q.source = r.source AND q.status = 'finished')""")):
            roots[source] = Path(root)
    for source, root in configured.items():
        if root is not None:
            roots[source] = root
    return roots


class ImageReader:
    """Reads image bytes; keeps a few EOL archives open with their seek indexes."""

    def __init__(self, roots: dict[str, Path], cache_dir: Path) -> None:
        self.roots = roots
        self.cache_dir = cache_dir
        self._archives: OrderedDict[str, object] = OrderedDict()

    def _root(self, source: str) -> Path:
        try:
            return self.roots[source]
        except KeyError:
            raise TolError(f"no root known for source {source}: set {source}_root or ingest it") from None

    def read(self, source: str, path: str, member_offset: int | None, byte_size: int) -> bytes:
        """The bytes of one image (OSError when the file or archive cannot be read)."""
        root = self._root(source)
        if source != "eol":
            with open(root / path, "rb") as handle:
                return handle.read()
        archive = self._archive(root / path)
        archive.seek(member_offset)
        data = archive.read(byte_size)
        if len(data) != byte_size:
            raise OSError(f"archive {path} ends before the member's {byte_size} bytes")
        return data

    def _index_path(self, archive: Path) -> Path:
        stat = archive.stat()
        return self.cache_dir / "eol-gzip-index" / f"{archive.name}.{stat.st_size}.{int(stat.st_mtime)}.gzidx"

    def _archive(self, path: Path):
        import indexed_gzip

        key = str(path)
        if key in self._archives:
            self._archives.move_to_end(key)
            return self._archives[key]
        index = self._index_path(path)
        if index.exists():
            archive = indexed_gzip.IndexedGzipFile(str(path), spacing=INDEX_SPACING, index_file=str(index))
        else:
            archive = indexed_gzip.IndexedGzipFile(str(path), spacing=INDEX_SPACING)
            archive.build_full_index()
            index.parent.mkdir(parents=True, exist_ok=True)
            partial = index.with_name(f".{index.name}.{os.getpid()}.tmp")
            archive.export_index(str(partial))
            os.replace(partial, index)  # several workers may build the same index; the last rename wins
        self._archives[key] = archive
        while len(self._archives) > OPEN_ARCHIVES:
            _, oldest = self._archives.popitem(last=False)
            oldest.close()
        return archive

    def close(self) -> None:
        """Close every open archive."""
        for archive in self._archives.values():
            archive.close()
        self._archives.clear()

"""Reading a catalogued image's bytes from where its source keeps it.

Each source says how its bytes are read (`open_store` of its module in etl/sources/): iNat21 and BIOSCAN
images are files under their root, EOL images members of `.tar.gz` archives (etl/sources/eol_archives.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl import sources
from etl.errors import TolError
from etl.sources.common import ImageStore, ReadOptions


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


def check_read_settings(settings: dict[str, object]) -> None:
    """Refuse a read setting outside its choices (TolError naming the setting and its choices)."""
    for source in sources.SOURCES:
        for setting in source.READ_SETTINGS:
            value = settings.get(setting.name, setting.default)
            if setting.choices and value not in setting.choices:
                raise TolError(f"{setting.name} must be one of {', '.join(setting.choices)}, not {value!r}")


class ImageReader:
    """Reads image bytes of every source; keeps each source's store (and what it holds open) between reads."""

    def __init__(self, roots: dict[str, Path], cache_dir: Path,
                 read_settings: Mapping[str, object] | None = None) -> None:
        """`read_settings`: the sources' READ_SETTINGS by name (a missing one takes its default)."""
        settings = dict(read_settings or {})
        check_read_settings(settings)
        self.roots = roots
        self.options = ReadOptions(cache_dir, settings)
        self._stores: dict[str, ImageStore] = {}

    def _store(self, source: str) -> ImageStore:
        store = self._stores.get(source)
        if store is None:
            root = self.roots.get(source)
            if root is None:
                raise TolError(f"no root known for source {source}: set {source}_root or ingest it")
            store = self._stores[source] = sources.by_name(source).open_store(root, self.options)
        return store

    def read(self, source: str, path: str, member_offset: int | None, byte_size: int) -> bytes:
        """The bytes of one image (OSError when the file or archive cannot be read)."""
        return self._store(source).read(path, member_offset, byte_size)

    def close(self) -> None:
        """Close what every store holds open."""
        for store in self._stores.values():
            store.close()
        self._stores.clear()

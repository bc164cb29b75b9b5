"""Reading a catalogued image's bytes from where its source keeps it.

Each source says how its bytes are read (`open_store` of its module in etl/sources/): iNat21 and BIOSCAN
images are files under their root, EOL images members of `.tar.gz` archives (etl/sources/eol_archives.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from stat import S_ISREG
from typing import NamedTuple, Protocol

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


class Whereabouts(NamedTuple):
    """Where a catalogued image lives: its source root, its listing unit (folder or archive), and whether each
    was there when looked at (after a failed read)."""

    root: Path
    unit: Path
    root_present: bool
    unit_present: bool


def _present(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError:
        return False
    return True


class ImageReader:
    """Reads image bytes of every source; keeps each source's store (and what it holds open) between reads."""

    def __init__(self, roots: dict[str, Path], cache_dir: Path,
                 read_settings: Mapping[str, object] | None = None, *,
                 heartbeat: Callable[[], None] | None = None, stale_seconds: float = 3600.0) -> None:
        """`read_settings`: the sources' READ_SETTINGS by name (a missing one takes its default); `heartbeat`:
        called while a long read step makes progress; `stale_seconds`: the age after which a cache temporary no
        live writer holds is a killed process's (see etl.sources.common.ReadOptions)."""
        settings = dict(read_settings or {})
        check_read_settings(settings)
        self.roots = roots
        self.options = ReadOptions(cache_dir, settings, heartbeat, stale_seconds)
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

    def locate(self, source: str, path: str) -> Whereabouts:
        """Look at the root and the unit of an image (after its read failed): are they there?"""
        store = self._store(source)
        root = self.roots[source]
        unit_of = getattr(store, "unit_of", None)
        unit = unit_of(path) if unit_of is not None else (root / path).parent
        root_present = _present(root)
        return Whereabouts(root, unit, root_present, root_present and _present(unit))

    def close(self) -> None:
        """Close what every store holds open."""
        for store in self._stores.values():
            store.close()
        self._stores.clear()


class IngestedImage(Protocol):
    """What `changed_since_ingest` needs of a planned sample (an `etl.write.tar.SampleRecord` is one)."""

    @property
    def source(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def member_offset(self) -> int | None: ...
    @property
    def byte_size(self) -> int: ...
    @property
    def source_mtime_ns(self) -> int | None: ...


def stamp_difference(size: int | None, mtime_ns: int, recorded_size: int | None,
                     recorded_mtime_ns: int | None) -> str | None:
    """Why a file's (size, mtime) now differs from those recorded at ingest, or None if it does not. A size of
    None (an archive member, whose size cannot be seen without reading) and an mtime not recorded (a row from
    before migration 0013) are not compared."""
    if size is not None and recorded_size is not None and size != recorded_size:
        return f"changed since ingest: {size:,} bytes, the catalog says {recorded_size:,}"
    if recorded_mtime_ns is not None and mtime_ns != recorded_mtime_ns:
        return "changed since ingest: modified after it was catalogued"
    return None


def changed_since_ingest(roots: Mapping[str, Path], image: IngestedImage) -> str | None:
    """Whether an image's file (an EOL member's archive) changed since ingest, as an image error reason, or None.
    A file that cannot be stat'ed is left to the read, which reports it as it does today."""
    root = roots.get(image.source)
    if root is None:
        return None
    try:
        stat = os.stat(os.path.join(root, image.path))  # not pathlib: this runs once per written image
    except OSError:
        return None
    if not S_ISREG(stat.st_mode):
        return None  # a FIFO, device or folder: the read reports it as "not a regular file"
    size = stat.st_size if image.member_offset is None else None
    return stamp_difference(size, stat.st_mtime_ns, image.byte_size, image.source_mtime_ns)

"""Files that appear whole or not at all: written under a hidden temporary name in their final folder, then
renamed into place with `os.replace` (atomic within one filesystem).

A temporary is named `.NAME.TAG.tmp`: hidden from globs of final names, and tagged by its writer (a process
id, or a shard claim's token) so that concurrent writers of the same file never share one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def temporary_name(path: Path, tag: str | int | None = None) -> Path:
    """The hidden temporary sibling of `path` (tagged with this process's id unless `tag` is given)."""
    return path.with_name(f".{path.name}.{os.getpid() if tag is None else tag}.tmp")


def remove_stale_temporaries(path: Path, keep: Path | None = None) -> None:
    """Delete the temporaries of `path` left by writers that died (all but `keep`)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        if keep is None or stale.name != keep.name:
            stale.unlink(missing_ok=True)


def fsync_directory(directory: Path) -> None:
    """Make the renames done in `directory` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def atomic_path(path: Path, tag: str | int | None = None) -> Iterator[Path]:
    """Yield the temporary path to write `path` through; on success it replaces `path`, on error it is deleted.

    For writers that want a file name rather than a file object (Parquet, gzip indexes).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = temporary_name(path, tag)
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


@contextmanager
def atomic_write(path: Path, mode: str = "wb", *, fsync: bool = False, tag: str | int | None = None,
                 **open_args: Any) -> Iterator[IO[Any]]:
    """Open `path` for writing through a temporary (see `atomic_path`); `open_args` go to `open`.

    With `fsync`, the data reaches the disk before the rename, so a crash cannot leave a renamed but empty file.
    """
    with atomic_path(path, tag) as partial, open(partial, mode, **open_args) as handle:
        yield handle
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())

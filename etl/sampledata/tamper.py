"""Changes to a sample collection after it was catalogued, for tests of source integrity (issue 19): a file
overwritten in place with the same size, as the chaos campaign did to two JPEGs, and one that grew."""

from __future__ import annotations

import os
import random
from pathlib import Path


def overwrite_middle(path: Path, count: int = 2048, seed: int = 0) -> None:
    """Write `count` random bytes into the middle of `path`, keeping its size, and move its mtime on by a second
    (so even a filesystem with coarse timestamps shows the change)."""
    size = path.stat().st_size
    count = min(count, max(size // 2, 1))
    data = random.Random(seed).randbytes(count)
    with open(path, "r+b") as handle:
        handle.seek((size - count) // 2)
        handle.write(data)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def append_bytes(path: Path, count: int = 100) -> None:
    """Append `count` zero bytes to `path` (its size changes)."""
    with open(path, "ab") as handle:
        handle.write(b"\0" * count)

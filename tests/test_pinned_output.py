"""The bytes of a small demo's shards are pinned: a refactoring that changes one byte of output fails here.

The digests were recorded with the code as it was before the write stage became a package (issue 12). A
deliberate change of the sample format updates them in the same commit, with the reason in its message. JPEG
bytes depend on the codec inside Pillow, so the pin names the Pillow version it was recorded with; a new
Pillow is a deliberate change too (re-record and say so).

Re-recorded for issue 15: the `json` member became uniformly typed (source ids as strings, "" for another
source's fields, never null), which changes every sample's bytes and so every `.idx` offset. Re-recorded
for issue 13: the sample collection gained the real files' messes (placeholders, authorities, a liverwort,
resolver answers from other providers), so the demo's captions and plans changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import PIL

RECORDED_WITH_PILLOW = "13.0.0"
PINNED = {
    "main-train/shard-000000.idx": "7f616331a84f66cb2c31fbd4ce978f554a4ef2e9e05eb5dc48588df56e5c12c3",
    "main-train/shard-000000.tar": "0d48c536636159521b662ce057bad2285c2be5e79a1eee14c04f5d479dbb887d",
    "main-train/shard-000001.idx": "c8a31248efecac4591ed00145609a2d6c6f7852df3714b52d12b02cb28ca1594",
    "main-train/shard-000001.tar": "c3b07ba6ea5da52a7f6287943eee80ef66c4c9ea1d33b878ce01c1cc0a987f0f",
    "main-train_small/shard-000000.idx": "f890b65a12eaad3f0b50e16160997a1b4dc1c10783509b28ca975011911162d6",
    "main-train_small/shard-000000.tar": "3193f290e05e6cfc8370c51ea5fe7e26b1405d3de1994b2c649af2951f4483d1",
    "main-val/shard-000000.idx": "cfe0921bbac7d6a11c8fa30951e41d6542280cc410cfeb5ec3673ad2370ed676",
    "main-val/shard-000000.tar": "be801519b3cd05a73ca3823a8eb046100135629f76ca2bdd73b2107f0bb2d51f",
}


def test_demo_shards_keep_their_pinned_bytes(demo_300: Path):
    assert PIL.__version__ == RECORDED_WITH_PILLOW, (
        f"Pillow {PIL.__version__} differs from the pin's {RECORDED_WITH_PILLOW}: JPEG bytes may differ; "
        "re-record PINNED deliberately")
    out = demo_300 / "shards"
    written = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted(out.rglob("shard-*")) if p.suffix in (".tar", ".idx")}
    assert written == PINNED

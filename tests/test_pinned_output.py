"""The bytes of a small demo's shards are pinned: a refactoring that changes one byte of output fails here.

The digests were recorded with the code as it was before the write stage became a package (issue 12). A
deliberate change of the sample format updates them in the same commit, with the reason in its message. JPEG
bytes depend on the codec inside Pillow, so the pin names the Pillow version it was recorded with; a new
Pillow is a deliberate change too (re-record and say so).

Re-recorded for issue 15: the `json` member became uniformly typed (source ids as strings, "" for another
source's fields, never null), which changes every sample's bytes and so every `.idx` offset. Re-recorded
for issue 13: the sample collection gained the real files' messes (placeholders, authorities, a liverwort,
resolver answers from other providers), so the demo's captions and plans changed. Re-recorded after the merge
of this session's branches, every reason at once: issue 13 point 5 (the sample gained three EOL pages), issue 17
(each sample's json carries its provenance: license, license_name, license_link, rights_holder, source_url),
issue 18 (the codec stack: libjpeg-turbo DCT scaling and OpenCV resampling instead of Pillow's path). Two demo
runs gave the same digests.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import PIL
import simplejpeg

RECORDED_WITH = {"pillow": "13.0.0", "simplejpeg": "1.9.0", "opencv": "5.0.0"}
PINNED = {
    "main-train/shard-000000.idx": "a7358248bd4c889b2c311b401483fed8ca710a8f821eb8698587c3c95435cd66",
    "main-train/shard-000000.tar": "448ba5253c1801d6d298f0f2d35eee94fe96b309b2caadc4b5719f4f6276ffe5",
    "main-train/shard-000001.idx": "4f0d8e2e2a26d694e70d9aaacbe2ea39f780d891b47f2f87cd6d63aec9577763",
    "main-train/shard-000001.tar": "d11a682cdaff271644db426bdc77101f03d3bf7d5b37e31e118da61a7adb42e3",
    "main-train_small/shard-000000.idx": "415bed1e1251e26803f2250a25a5e22169d3f74fc0706b9f89481232a1403fb5",
    "main-train_small/shard-000000.tar": "022ebbe6f9f0e01d85006a5964d4db093016ba3da44764432ff69d218dd5a2d1",
    "main-val/shard-000000.idx": "0105252012deea07a6cea7fa3ad797dadac6485e78d4ac6741e9309d1d39442e",
    "main-val/shard-000000.tar": "4a1fc4cbf639cb6bafc2fdabdc22d46c3b4b40bf13196ac71dbe6906b50f8465",
}


def test_demo_shards_keep_their_pinned_bytes(demo_300: Path):
    installed = {"pillow": PIL.__version__, "simplejpeg": simplejpeg.__version__, "opencv": cv2.__version__}
    assert installed == RECORDED_WITH, (
        f"codec libraries {installed} differ from the pin's {RECORDED_WITH}: JPEG bytes may differ; "
        "re-record PINNED deliberately")
    out = demo_300 / "shards"
    written = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted(out.rglob("shard-*")) if p.suffix in (".tar", ".idx")}
    assert written == PINNED

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
import os
import subprocess
import sys
from pathlib import Path

import cv2
import PIL
import simplejpeg

RECORDED_WITH = {"pillow": "13.0.0", "simplejpeg": "1.9.0", "opencv": "5.0.0"}
PINNED = {
    "main-train/shard-000000.idx": "a5c2dbb79e8d55e5a4b5f96b4ce1b0bbb6ea0c498de14104b3e2e268a23e2739",
    "main-train/shard-000000.tar": "0e8e8bc7853a20d35bcb353f79201a1e928b1b126c4e487ba2d9994f4aeca86a",
    "main-train/shard-000001.idx": "a230227ad2e295f840ffea915090f51175dd2f98a986d140850386a467558bb8",
    "main-train/shard-000001.tar": "a6d6539821c7aac8461121495265bdb0579bebc34d660fb9295eb8f23774cab9",
    "main-train_small/shard-000000.idx": "8cef1b757fd5e69f889de2404e73eb692b2baf9445786952f16c3257abc3ae94",
    "main-train_small/shard-000000.tar": "78e9c2271b385ad7adbe4da54e781bdabf26485c5dcf88d33aea94a61eab4dc1",
    "main-val/shard-000000.idx": "f57bd4608ee8fc41a28928507eafdf42c9fe66b998b9f7c0021da7effd00f394",
    "main-val/shard-000000.tar": "c1f6c2837dcfe2721ff07b4b0d7de902de9197dd3bc984b7ef2eb3fb7ca7bc55",
}


def test_demo_shards_keep_their_pinned_bytes(tmp_path: Path):
    installed = {"pillow": PIL.__version__, "simplejpeg": simplejpeg.__version__, "opencv": cv2.__version__}
    assert installed == RECORDED_WITH, (
        f"codec libraries {installed} differ from the pin's {RECORDED_WITH}: JPEG bytes may differ; "
        "re-record PINNED deliberately")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TOL_")}
    subprocess.run([str(Path(sys.executable).parent / "tol"), "-q", "demo", str(tmp_path / "demo"), "--images", "300"],
                   check=True, env=environment, capture_output=True, cwd=tmp_path)
    out = tmp_path / "demo" / "shards"
    written = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted(out.rglob("shard-*")) if p.suffix in (".tar", ".idx")}
    assert written == PINNED

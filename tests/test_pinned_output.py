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
    "main-train/shard-000000.idx": "ded9310e542437703caa40c13380a1da2d503414b2db6e1772f8390b93fc5083",
    "main-train/shard-000000.tar": "6159be42719ed71f5c1ac031304dcae4ae5a4f272f2e06e642f24b1376ff86c8",
    "main-train/shard-000001.idx": "164f3bae3d82c95cbf74d67a57200ff368ae452d2cc61b70f81c27a9885be1ac",
    "main-train/shard-000001.tar": "4d4fc8ddc128829dfabaa7403ca5513000a8e8a525f99d834359756d48a16bf6",
    "main-train_small/shard-000000.idx": "7f8f40d8705ac69087be40ca987f4568a9cca2f2b8ca9f244655631990a38f3e",
    "main-train_small/shard-000000.tar": "d95fa40ba2b0bee30de48c744bfcc0151058d34459a58787dd12fb47ca3fd0bc",
    "main-val/shard-000000.idx": "971cd524c9ce7558d6f854a5caa723480f1f6455983a05a47c6531f8c731ecd7",
    "main-val/shard-000000.tar": "270de9971f810b6d894df397b7932a9089979c4a09f70a6eec031273d6dd32cd",
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

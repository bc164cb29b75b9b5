"""The bytes of a small demo's shards are pinned: a refactoring that changes one byte of output fails here.

The digests were recorded with the code as it was before the write stage became a package (issue 12). A
deliberate change of the sample format updates them in the same commit, with the reason in its message. JPEG
bytes depend on the codec inside Pillow, so the pin names the Pillow version it was recorded with; a new
Pillow is a deliberate change too (re-record and say so).

Re-recorded for issue 15: the `json` member became uniformly typed (source ids as strings, "" for another
source's fields, never null), which changes every sample's bytes and so every `.idx` offset. Re-recorded
for issue 13: the sample collection gained the real files' messes (placeholders, authorities, a liverwort,
resolver answers from other providers), so the demo's captions and plans changed. Re-recorded for issue 13
point 5: the sample gained a family page, a DH genus page and a consensus-only genus page (more EOL images).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import PIL

RECORDED_WITH_PILLOW = "13.0.0"
PINNED = {
    "main-train/shard-000000.idx": "e3cef24ebeebb962c219467139ce146ec943f43a41051f569a7fb0eed154f8f2",
    "main-train/shard-000000.tar": "0ac19a16a3290f2947113d6a771a3662870f1f87ef2f37138b52ff440448d7d5",
    "main-train/shard-000001.idx": "f654de3ab27b85a1135e81d94508fb23f16b3bfb532fc8f34c76b0be3b60a301",
    "main-train/shard-000001.tar": "df47c375f01d3cce800e1af4a5813fcd9e3c3cb02ad12cf1daed9e14c4840268",
    "main-train_small/shard-000000.idx": "00dfdfbb8e1978a91c310c2bb689abdda63efb178fbb1285e9aede9cd7a2a63a",
    "main-train_small/shard-000000.tar": "bfdb1ac59a04fbd2e2676733738c6d63bf267a05c4c2c87ae8eb10f8b5738376",
    "main-val/shard-000000.idx": "28b657bcf57411039164140db9305a9783974aa11a3762855a07e165b1330ebd",
    "main-val/shard-000000.tar": "35fa2f8096f1234f47d4354297354c363d58c2893455b9790f5d9c1a793a2ab3",
}


def test_demo_shards_keep_their_pinned_bytes(tmp_path: Path):
    assert PIL.__version__ == RECORDED_WITH_PILLOW, (
        f"Pillow {PIL.__version__} differs from the pin's {RECORDED_WITH_PILLOW}: JPEG bytes may differ; "
        "re-record PINNED deliberately")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TOL_")}
    subprocess.run([str(Path(sys.executable).parent / "tol"), "-q", "demo", str(tmp_path / "demo"), "--images", "300"],
                   check=True, env=environment, capture_output=True, cwd=tmp_path)
    out = tmp_path / "demo" / "shards"
    written = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted(out.rglob("shard-*")) if p.suffix in (".tar", ".idx")}
    assert written == PINNED

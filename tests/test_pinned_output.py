"""The bytes of a small demo's shards are pinned: a refactoring that changes one byte of output fails here.

The digests were recorded with the code as it was before the write stage became a package (issue 12). A
deliberate change of the sample format updates them in the same commit, with the reason in its message. JPEG
bytes depend on the codec inside Pillow, so the pin names the Pillow version it was recorded with; a new
Pillow is a deliberate change too (re-record and say so).

Re-recorded for issue 17: the `json` member gained each image's provenance (`license`, `license_name`,
`license_link`, `rights_holder`, `source_url`), which changes every sample's bytes and so every `.idx` offset.
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

import PIL

RECORDED_WITH_PILLOW = "13.0.0"
PINNED = {
    "main-train/shard-000000.idx": "a5ff6bdb9113c01725f64f82609881a11a50e217a1820091e2afc38286bb3d6f",
    "main-train/shard-000000.tar": "d3e203d9b91fc7ccf5a330fd917f540689d0d5981663c427268bda8bce0ad65d",
    "main-train/shard-000001.idx": "7b41b574a6530ac3b1209bd6c3dd3942a3e6fd9565812fd71b66bcf1b2cfb9d3",
    "main-train/shard-000001.tar": "f2d6ad92fdc10b9585439f12c17c5716903d7f043437f449ffac90d92a57c842",
    "main-train_small/shard-000000.idx": "88e1e5dca08d530a4e5e80b8dc87d742f0c2dcb909d35a3f20cc495bf46198c7",
    "main-train_small/shard-000000.tar": "28665134b441e003faee9dd9edbe05b12feb5736bbb8eb94f5871d207163d4a8",
    "main-val/shard-000000.idx": "dd600bea71178eddaf099d2e45f991d4e481d9b363248ae7c3d86458697872ba",
    "main-val/shard-000000.tar": "94924d9d638ec7e21ea6c01ee0e0716677d49c22aac533137c9b78d087e08579",
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

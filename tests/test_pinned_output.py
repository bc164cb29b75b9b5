"""The bytes of a small demo's shards are pinned: a refactoring that changes one byte of output fails here.

The digests were recorded with the code as it was before the write stage became a package (issue 12). A
deliberate change of the sample format updates them in the same commit, with the reason in its message. JPEG
bytes depend on the codec inside Pillow, so the pin names the Pillow version it was recorded with; a new
Pillow is a deliberate change too (re-record and say so).
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
    "main-train/shard-000000.idx": "6037b28be6de541181ebc3589dc684a4379682b30e71375d0b0518ecdf6b6a37",
    "main-train/shard-000000.tar": "21291b30f11d92056189cb41e4d4bf39d0c73df0243b23d814ed4801f755082b",
    "main-train/shard-000001.idx": "337047951f7d2f3e3799139cdc86a10001d30781cd2cf80ab0c598c694b5211f",
    "main-train/shard-000001.tar": "db34081af66553ecf151067499a31d494fd2a1c538491a94f3653347ae0305d2",
    "main-train_small/shard-000000.idx": "939016938d3de6c8856a825af9a4aa00ce5d3651fa4e1ddae505072af262ac63",
    "main-train_small/shard-000000.tar": "272914322c8997632e898ac8114246b41d74efac41c8b1a90cd4e480429a03d0",
    "main-val/shard-000000.idx": "157a3c8b97b42997b529ef123c5847862b4c096d887cf3f7b1844c82cb901ce3",
    "main-val/shard-000000.tar": "8cafbb23dcdbb32ca6f215b176771b1462151cd56b3e173756a69b17a6f9469f",
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

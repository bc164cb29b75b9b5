"""The bytes of a small demo's shards are pinned: a refactoring that changes one byte of output fails here.

The digests were recorded with the code as it was before the write stage became a package (issue 12). A
deliberate change of the sample format updates them in the same commit, with the reason in its message. JPEG
bytes depend on the codec inside Pillow, so the pin names the Pillow version it was recorded with; a new
Pillow is a deliberate change too (re-record and say so).

Re-recorded for issue 15: the `json` member became uniformly typed (source ids as strings, "" for another
source's fields, never null), which changes every sample's bytes and so every `.idx` offset.
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
    "main-train/shard-000000.idx": "dcf104ca47bedd26b74cb54e9995d84bd0fee9bae750a29f65b1f94937b8c781",
    "main-train/shard-000000.tar": "e8ccb73e9512a0cf5d422db7e99fc6c321e809b09f8994a41ff305c1c7aff839",
    "main-train/shard-000001.idx": "e6abd24183c865e834302a89ff3d9d3bfd3c11aab748367a5525aea25300b541",
    "main-train/shard-000001.tar": "84767312929f12442c012012ca7647a70793e818528549ce065ecd73da8066ec",
    "main-train_small/shard-000000.idx": "9023390fd8a1a3d8cfdd26a36460791280cb29d9be855c147c15096a81f7e746",
    "main-train_small/shard-000000.tar": "9b883a3d62f456ec23b7633943453064ef6f9738d7370f43040094f788728c28",
    "main-val/shard-000000.idx": "0a98691753abf50e7b60c689e5709af9afcdff165f36c4804f1a5c115f654e42",
    "main-val/shard-000000.tar": "d6da00e2144c9a0708912352d4c12decb7e1c59ed695f3627b8c1da56fe4c0df",
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

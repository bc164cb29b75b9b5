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
    "main-train/shard-000000.idx": "ed7f22229b293887a49ddb5652cb0f895e0e833d99add0452752df95a819969d",
    "main-train/shard-000000.tar": "6ee4755fa2dd705096180d6c1f4e59c40587b7c2d98b505564a499d61c27a3b6",
    "main-train/shard-000001.idx": "3c397b2fcba22983f027d5fd23574d2812fdae2fc820c4857a9439cf370ffc44",
    "main-train/shard-000001.tar": "639a01ec227fc10fde5ac92a2253ac9642acb2157d12d2c5f66f7fb94ef6f01f",
    "main-train_small/shard-000000.idx": "7bf45d7120c6bc1297fb2aec358f5599ad34bd562e2bf7991ca8e8e9a6a82993",
    "main-train_small/shard-000000.tar": "3da7d3a93682dd3abf5c1e103cb50769b8d0ff5735892a74abd84636eb942d64",
    "main-val/shard-000000.idx": "4052f7fb0d0e4300024c92310b83657c02f334e00609450c26b33d452f2ef18e",
    "main-val/shard-000000.tar": "ddbf8566cf50b9fd1411f9ea3112b5b31dddb9bb48285394db7571983e36b33b",
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

"""`tol shards verify --shardlist`: any WebDataset shards checked with no catalog. The shards here are made
with webdataset's own TarWriter (as the original pipeline did: 11 members a sample) or with `tarfile`, then
broken one way each."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
import webdataset
from PIL import Image

from etl.errors import TolError
from etl.shardcheck import check_shardlist, expand_shardlist

OLD_MEMBERS = ("com.txt", "common_name.txt", "jpg", "sci.txt", "sci_com.txt", "scientific_name.txt", "taxon.txt",
               "taxonTag.txt", "taxonTag_com.txt", "taxon_com.txt", "taxonomic_name.txt")


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def old_sample(key: str) -> dict:
    """A sample as the original make_wds wrote it: 11 members, captions as text."""
    sample: dict = {"__key__": key}
    for member in OLD_MEMBERS:
        sample[member] = jpeg() if member == "jpg" else f"a photo of Pica hudsonia ({member})."
    return sample


def write_old_tar(path: Path, keys: list[str]) -> None:
    with webdataset.TarWriter(str(path)) as sink:
        for key in keys:
            sink.write(old_sample(key))


def write_raw_tar(path: Path, names: list[str], fmt: int = tarfile.USTAR_FORMAT, pax: dict | None = None) -> None:
    with tarfile.open(path, "w", format=fmt) as archive:
        for name in names:
            data = jpeg() if name.endswith(".jpg") else b"a photo of Pica hudsonia."
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if pax:
                info.pax_headers = pax
            archive.addfile(info, io.BytesIO(data))


def keys(n: int, seed: str = "k") -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}{i}")) for i in range(n)]


def problems(paths: list[Path]) -> dict[str, list[str]]:
    return {Path(r.path).name: r.problems for r in check_shardlist(paths) if r.problems}


def test_shards_made_the_old_way_are_good_with_braces_and_globs(tmp_path: Path):
    for index in range(3):
        write_old_tar(tmp_path / f"shard-{index:06d}.tar", keys(4, seed=str(index)))
    braces = expand_shardlist(str(tmp_path / "shard-{000000..000002}.tar"))
    assert [p.name for p in braces] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert expand_shardlist(str(tmp_path / "shard-00000[12].tar")) == braces[1:]
    assert b" mtime=" in braces[0].read_bytes()  # webdataset's float mtime: timestamp-only PAX records, accepted
    reports = check_shardlist(braces)
    assert [r.problems for r in reports] == [[], [], []]
    assert sum(len(r.keys) for r in reports) == 12 and reports[0].first_member_set == OLD_MEMBERS
    with pytest.raises(TolError, match="names no file"):
        expand_shardlist(str(tmp_path / "nothing-*.tar"))
    assert problems([tmp_path / "shard-000009.tar"]) == {"shard-000009.tar": ["file missing"]}


def test_a_dot_in_a_key(tmp_path: Path):
    good, dotted = keys(3), "Pica.hudsonia"
    write_raw_tar(tmp_path / "a.tar", [f"{k}.{m}" for k in [*good, dotted] for m in OLD_MEMBERS])
    found = problems([tmp_path / "a.tar"])["a.tar"]
    assert len(found) == 1 and "dot in their key" in found[0] and "hudsonia.jpg" in found[0]


def test_a_sample_split_across_two_places(tmp_path: Path):
    a, b = keys(2)
    names = [f"{a}.{m}" for m in OLD_MEMBERS[:5]] + [f"{b}.{m}" for m in OLD_MEMBERS] \
        + [f"{a}.{m}" for m in OLD_MEMBERS[5:]]
    write_raw_tar(tmp_path / "a.tar", names)
    assert any(f"{a}: sample split across two places" in p for p in problems([tmp_path / "a.tar"])["a.tar"])


def test_a_key_duplicated_across_shards(tmp_path: Path):
    first, second = keys(3, "x"), keys(3, "y")
    write_old_tar(tmp_path / "shard-000000.tar", first)
    write_old_tar(tmp_path / "shard-000001.tar", [*second, first[1]])
    assert problems(expand_shardlist(str(tmp_path / "shard-*.tar"))) == {
        "shard-000001.tar": [f"{first[1]}: key also in shard-000000.tar"]}


def test_a_truncated_member(tmp_path: Path):
    write_old_tar(tmp_path / "a.tar", keys(3))
    data = (tmp_path / "a.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as archive:
        last_jpg = [m for m in archive.getmembers() if m.name.endswith(".jpg")][-1]
    (tmp_path / "a.tar").write_bytes(data[:last_jpg.offset_data + last_jpg.size // 2])
    found = problems([tmp_path / "a.tar"])["a.tar"]
    assert any(p.startswith(f"{last_jpg.name}: truncated member") for p in found), found


def test_a_pax_header(tmp_path: Path):
    write_raw_tar(tmp_path / "a.tar", [f"{k}.{m}" for k in keys(2) for m in OLD_MEMBERS], fmt=tarfile.PAX_FORMAT,
                  pax={"comment": "made with PAX"})
    found = problems([tmp_path / "a.tar"])["a.tar"]
    assert found and all("PAX extended header (comment)" in p for p in found)


@pytest.mark.parametrize(("member", "payload", "expected"), [
    ("jpg", b"\xff\xd8 not really a jpeg", "image does not decode"),
    ("com.txt", b"caf\xe9", "not UTF-8"),
    ("json", b"{not json", "not valid JSON"),
])
def test_bad_content(tmp_path: Path, member: str, payload: bytes, expected: str):
    sample = old_sample(keys(1)[0]) | {"json": b"{}"}
    sample[member] = payload
    with webdataset.TarWriter(str(tmp_path / "a.tar")) as sink:
        sink.write(sample)
    found = problems([tmp_path / "a.tar"])["a.tar"]
    assert len(found) == 1 and expected in found[0]


def test_sidecars_must_agree_and_the_command_exits_3(tmp_path: Path):
    for index in range(2):
        write_old_tar(tmp_path / f"shard-{index:06d}.tar", keys(2 + index, seed=str(index)))
    (tmp_path / "sizes.json").write_text(json.dumps({"shard-000000.tar": 2, "shard-000001.tar": 2}))
    command = [str(Path(sys.executable).parent / "tol"), "shards", "verify", "--shardlist",
               str(tmp_path / "shard-{000000..000001}.tar"), "--workers", "1"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TOL_")}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines() == [
        f"BAD {tmp_path / 'shard-000001.tar'}: sizes.json says 2 samples, the tar has 3",
        "1 of 2 shards good (5 samples)"]
    (tmp_path / "sizes.json").write_text(json.dumps({"shard-000000.tar": 2, "shard-000001.tar": 3}))
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "2 of 2 shards good (5 samples)\n"

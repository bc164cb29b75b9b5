"""Reading EOL members from their archives: restaged plain tars and gzip seek indexes give the bytes tarfile
gives, truncated and multi-member archives included, and concurrent workers restage an archive once."""

from __future__ import annotations

import gzip
import io
import multiprocessing
import os
import random
import tarfile
from pathlib import Path

import pytest

from etl import config
from etl.errors import TolError
from etl.reader import ImageReader
from etl.sources.common import NotRegularFile, read_regular_file
from etl.sources.eol_archives import EOL_ACCESS, restage


def make_archive(path: Path, members: int, seed: int = 3) -> dict[str, tuple[int, bytes]]:
    """A .tar.gz of incompressible members; returns name -> (offset in the tar stream, bytes)."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for n in range(members):
            data = rng.randbytes(rng.randint(1, 300_000))
            info = tarfile.TarInfo(f"{1000 + n}_7_eol-full-size-copy.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: (m.offset_data, tar.extractfile(m).read()) for m in tar}


@pytest.mark.parametrize("access", EOL_ACCESS)
def test_every_member_reads_back_exactly(tmp_path: Path, access: str):
    members = make_archive(tmp_path / "a.tar.gz", 40)
    reader = ImageReader({"eol": tmp_path}, tmp_path / "cache", {"eol_access": access})
    for name in random.Random(1).sample(sorted(members), len(members)):  # shard order: any order
        offset, data = members[name]
        assert reader.read("eol", "a.tar.gz", offset, len(data)) == data
    reader.close()
    cached = list((tmp_path / "cache").rglob("*"))
    if access == "restage":
        [tar] = [p for p in cached if p.suffix == ".tar"]
        assert tar.read_bytes() == gzip.decompress((tmp_path / "a.tar.gz").read_bytes())
    assert not [p for p in cached if p.name.endswith(".tmp")]


def test_truncated_archive_serves_members_before_the_cut(tmp_path: Path):
    members = make_archive(tmp_path / "a.tar.gz", 30)
    whole = (tmp_path / "a.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(whole[:len(whole) // 2])
    reader = ImageReader({"eol": tmp_path}, tmp_path / "cache", {"eol_access": "restage"})
    ordered = sorted(members.values())
    first_offset, first = ordered[0]
    assert reader.read("eol", "cut.tar.gz", first_offset, len(first)) == first
    last_offset, last = ordered[-1]
    with pytest.raises(OSError, match="ends before"):
        reader.read("eol", "cut.tar.gz", last_offset, len(last))


def test_multi_member_gzip_is_restaged_whole(tmp_path: Path):
    parts = [random.Random(n).randbytes(100_000) for n in range(3)]
    (tmp_path / "m.tar.gz").write_bytes(b"".join(gzip.compress(part, mtime=0) for part in parts))
    restage(tmp_path / "m.tar.gz", tmp_path / "m.tar")
    assert (tmp_path / "m.tar").read_bytes() == b"".join(parts)


def _restage_in_process(archive: str, target: str) -> None:
    restage(Path(archive), Path(target))


def test_concurrent_workers_restage_once(tmp_path: Path):
    make_archive(tmp_path / "a.tar.gz", 60)
    target = tmp_path / "cache" / "a.tar"
    context = multiprocessing.get_context("forkserver")
    processes = [context.Process(target=_restage_in_process, args=(str(tmp_path / "a.tar.gz"), str(target)))
                 for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert target.read_bytes() == gzip.decompress((tmp_path / "a.tar.gz").read_bytes())
    assert sorted(p.name for p in target.parent.iterdir()) == [".a.tar.lock", "a.tar"]


def test_eol_access_setting_is_checked():
    assert config.resolve({}, {}).get_value("eol_access") == "restage"
    assert config.resolve({}, {"TOL_EOL_ACCESS": "gzip-index"}).get_value("eol_access") == "gzip-index"
    with pytest.raises(TolError, match="eol_access from env TOL_EOL_ACCESS must be one of restage, gzip-index"):
        config.resolve({}, {"TOL_EOL_ACCESS": "fast"})
    with pytest.raises(TolError, match="eol_access must be one of"):
        ImageReader({}, Path("."), {"eol_access": "fast"})


def test_plain_files_read_whole_and_only_regular_ones(tmp_path: Path):
    (tmp_path / "c").mkdir()
    data = random.Random(2).randbytes(70_000)
    (tmp_path / "c" / "x.jpg").write_bytes(data)
    (tmp_path / "c" / "empty.jpg").write_bytes(b"")
    os.mkfifo(tmp_path / "c" / "fifo.jpg")
    reader = ImageReader({"inat21": tmp_path}, tmp_path / "cache")
    for _ in range(2):  # the first read opens the source's store, the next ones read the file directly
        assert reader.read("inat21", "c/x.jpg", None, len(data)) == data
        assert reader.read("inat21", "c/empty.jpg", None, 0) == b""
        with pytest.raises(NotRegularFile, match="FIFO"):
            reader.read("inat21", "c/fifo.jpg", None, 0)
        with pytest.raises(NotRegularFile, match="folder"):
            reader.read("inat21", "c", None, 0)
        with pytest.raises(FileNotFoundError):
            reader.read("inat21", "c/gone.jpg", None, 10)
    reader.close()
    assert read_regular_file(str(tmp_path / "c" / "x.jpg")) == data

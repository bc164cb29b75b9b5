"""The verify stage: every shard of a plan is on disk exactly as its manifest says, and (with --full) every
sample in it is what the catalog says it should be, read back with the real `webdataset` reader."""

from __future__ import annotations

import functools
import hashlib
import io
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from sqlalchemy.engine import Engine

from etl import db
from etl.parallel import ordered_map
from etl.plan import Plan, get_plan
from etl.progress import Progress
from etl.write.queue import ShardQueue, ShardRow
from etl.write.tar import sample_members

USTAR_MAGICS = (b"ustar\x0000", b"ustar  \x00")


@dataclass
class ShardCheck:
    """The problems found in one shard (empty = good)."""

    shard_index: int
    path: str
    problems: list[str] = field(default_factory=list)


def _check_headers(path: Path, problems: list[str]) -> list[tuple[str, str]]:
    """Walk the raw tar headers: ustar/GNU only, no PAX; return (key, extension) of every member in order."""
    names = []
    with tarfile.open(path, "r:") as archive:
        for member in archive:
            if member.pax_headers:
                problems.append(f"{member.name}: has PAX headers")
            if not member.isfile():
                problems.append(f"{member.name}: not a regular file")
                continue
            key, dot, extension = member.name.partition(".")
            if not dot or "/" in key:
                problems.append(f"{member.name}: not <key>.<extension>")
            names.append((key, extension))
    with open(path, "rb") as handle:
        offset = 0
        size = path.stat().st_size
        while offset + 512 <= size:
            handle.seek(offset)
            header = handle.read(512)
            if header == b"\0" * 512:
                break
            if header[257:265] not in USTAR_MAGICS:
                problems.append(f"header at byte {offset}: not ustar or GNU format")
            if header[156:157] in (b"x", b"g"):
                problems.append(f"header at byte {offset}: PAX extended header")
            member_size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
            offset += 512 + (member_size + 511) // 512 * 512
    return names


MANIFEST_FIELDS = ("n_samples", "n_bytes", "sha256", "md5")


def manifest_gaps(shard: ShardRow) -> list[str]:
    """What a done shard's manifest lacks: a done shard without its size, sample count or checksums (as a
    schema downgrade and upgrade can leave it, see `tol db downgrade`) cannot be checked, so it is not passed."""
    missing = [name for name in MANIFEST_FIELDS if getattr(shard, name) is None]
    if shard.state != "done" or not missing:
        return []
    return [f"manifest has no {', '.join(missing)} (verify --reset writes the shard again)"]


def file_digests(path: Path) -> tuple[str, str]:
    """(sha256, md5) of a file, read once in 1 MiB blocks."""
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            sha256.update(block)
            md5.update(block)
    return sha256.hexdigest(), md5.hexdigest()


@functools.lru_cache(maxsize=4)
def _engine(database_url: str) -> Engine:
    """One read-only engine per process and catalog, reused for every shard it checks."""
    return db.make_engine(database_url, readonly=True)


def check_shard(database_url: str, plan_name: str, full: bool, shard: ShardRow) -> ShardCheck:
    """All checks of one shard (runs in a worker process)."""
    engine = _engine(database_url)
    plan = get_plan(engine, plan_name)
    path = Path(plan.out_dir) / shard.path
    result = ShardCheck(shard.shard_index, shard.path)
    if shard.state != "done":
        result.problems.append(f"not written (state {shard.state})")
        return result
    if not path.is_file():
        result.problems.append("file missing")
        return result
    gaps = manifest_gaps(shard)
    result.problems += gaps
    if shard.n_bytes is not None and path.stat().st_size != shard.n_bytes:
        result.problems.append(f"size {path.stat().st_size} bytes, manifest says {shard.n_bytes}")
    sha256, md5 = file_digests(path)
    if shard.sha256 is not None and sha256 != shard.sha256:
        result.problems.append("sha256 differs from the manifest")
    elif shard.md5 is not None and md5 != shard.md5:  # the file matches its sha256: the recorded md5 is wrong
        result.problems.append("md5 differs from the manifest")
    if not full or result.problems:
        return result
    _check_samples(ShardQueue(engine), plan, shard.id, path, result.problems)
    return result


def _check_samples(queue: ShardQueue, plan: Plan, shard_id: int, path: Path, problems: list[str]) -> None:
    import webdataset

    skipped = queue.skipped_images(shard_id)
    expected = [record for record in queue.samples(shard_id) if record.image_id not in skipped]
    names = _check_headers(path, problems)
    seen_keys: list[str] = []
    for key, _ in names:
        if not seen_keys or seen_keys[-1] != key:
            if key in seen_keys:
                problems.append(f"{key}: members not consecutive")
            seen_keys.append(key)
    dataset = webdataset.WebDataset(str(path), shardshuffle=False, empty_check=False)
    samples = list(dataset)
    keys = [sample["__key__"] for sample in samples]
    if keys != [record.image_id for record in expected]:
        problems.append(f"{len(keys)} samples in the tar, {len(expected)} planned, or not in plan order")
        return
    for sample, record in zip(samples, expected, strict=True):
        wanted = sample_members(record, plan.txt_field, b"", plan.caption_case)
        present = {k for k in sample if not k.startswith("__")}
        if present != {extension.lower() for extension in wanted}:
            problems.append(f"{sample['__key__']}: members {sorted(present)} differ from the planned ones")
            continue
        for extension, value in wanted.items():
            if extension != "jpg" and sample[extension.lower()] != value:
                problems.append(f"{sample['__key__']}: {extension} differs from the catalog")
        try:
            image = Image.open(io.BytesIO(sample["jpg"]))
            image.load()
            if image.size != (plan.width, plan.height) or image.mode != "RGB":
                problems.append(f"{sample['__key__']}: image is {image.mode} {image.size[0]}x{image.size[1]}")
        except OSError as exc:
            problems.append(f"{sample['__key__']}: image does not decode: {exc}")


def verify(engine: Engine, database_url: str, plan_name: str, *, full: bool = False, reset: bool = False,
           workers: int = 1, progress: bool = False) -> list[ShardCheck]:
    """Check every shard of the plan (in `workers` processes); with `reset`, set bad ones back to pending.
    With `progress`, show the shards checked on stderr (see etl.progress)."""
    plan = get_plan(engine, plan_name)
    queue = ShardQueue(engine)
    shards = queue.shards(plan.id)
    check = functools.partial(check_shard, database_url, plan_name, full)
    results: list[ShardCheck] = []
    with Progress(len(shards), "shards", f"verify {plan.name}", enabled=progress) as bar:
        for result in ordered_map(check, shards, workers, window=2 * max(workers, 1)):
            results.append(result)
            bar.advance()
    if reset:
        queue.reset([shard.id for shard, result in zip(shards, results, strict=True) if result.problems])
    return results


def report_lines(results: list[ShardCheck], *, full: bool) -> list[str]:
    """What `tol shards verify` prints: each bad shard with its first problems, then how many are good."""
    bad = [result for result in results if result.problems]
    out = [f"BAD {result.path}: " + "; ".join(result.problems[:5]) for result in bad]
    out.append(f"{len(results) - len(bad)} of {len(results)} shards good" + (" (full check)" if full else ""))
    return out

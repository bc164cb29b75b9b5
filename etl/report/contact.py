"""A contact sheet: N samples drawn at random (seeded) from a plan's written shards, read back from the tars.

The draw is over the samples the manifests count (shard by shard, in order), so the same plan, N and seed
give the same samples. A drawn sample's members are found through its shard's DALI `.idx` (a seek per member,
however large the shard), or by reading a shard without one as a stream; each drawn sample gives a small JPEG
thumbnail (inlined in the page as a data URI), its caption (`txt`) and its key (the treeoflife_id).
"""

from __future__ import annotations

import base64
import bisect
import io
import json
import random
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from PIL import Image

from etl.errors import TolError
from etl.write.queue import ShardRow

THUMBNAIL = 192  # pixels on the longer side


class ContactSample(NamedTuple):
    """One drawn sample: where it is, its key, caption, license and thumbnail."""

    shard: str
    position: int
    key: str
    caption: str
    license: str
    thumbnail: str  # base64 JPEG


def draw(shards: Sequence[ShardRow], count: int, seed: int) -> list[tuple[int, int]]:
    """`count` distinct (index into `shards`, position in that shard) pairs drawn with `seed` from the samples
    of the shards, sorted (fewer when the shards hold fewer samples)."""
    sizes = [int(shard.n_samples or 0) for shard in shards]
    total = sum(sizes)
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    picks = sorted(random.Random(seed).sample(range(total), min(count, total)))
    drawn = []
    for pick in picks:
        index = bisect.bisect_right(starts, pick) - 1
        drawn.append((index, pick - starts[index]))
    return drawn


def thumbnail(jpeg: bytes, size: int = THUMBNAIL) -> str:
    """A JPEG's thumbnail (at most `size` pixels on its longer side) as base64 JPEG."""
    with Image.open(io.BytesIO(jpeg)) as image:
        small = image.convert("RGB")
        small.thumbnail((size, size))
        out = io.BytesIO()
        small.save(out, format="JPEG", quality=85)
    return base64.b64encode(out.getvalue()).decode("ascii")


def read_indexed(path: Path, index: Path, positions: set[int]) -> dict[int, dict[str, bytes]]:
    """The members of the samples at `positions`, found through the tar's DALI `.idx` (a line per sample:
    `extension offset size name` per member): a seek and a read per member, however large the shard."""
    lines = index.read_text(encoding="utf-8").splitlines()[1:]
    found: dict[int, dict[str, bytes]] = {}
    with open(path, "rb") as tar:
        for position in sorted(p for p in positions if p < len(lines)):
            fields = lines[position].split()
            sample: dict[str, bytes] = {}
            for extension, offset, size, name in zip(fields[::4], fields[1::4], fields[2::4], fields[3::4],
                                                     strict=True):
                sample["__key__"] = name.partition(".")[0].encode()
                if extension in ("jpg", "txt", "json"):
                    tar.seek(int(offset))
                    sample[extension] = tar.read(int(size))
            found[position] = sample
    return found


def _read_samples(path: Path, positions: set[int]) -> dict[int, dict[str, bytes]]:
    """The members of the samples at `positions` of the tar at `path` (extension → bytes): through its `.idx`
    when it has one, else by reading the tar as a stream up to the last of them."""
    index = path.with_suffix(".idx")
    if index.is_file():
        try:
            return read_indexed(path, index, positions)
        except (OSError, ValueError) as error:
            raise TolError(f"shard {path} or its index cannot be read for the contact sheet: {error}") from None
    return read_streamed(path, positions)


def read_streamed(path: Path, positions: set[int]) -> dict[int, dict[str, bytes]]:
    """The members of the samples at `positions` of the tar at `path`, reading it as a stream up to the last."""
    found: dict[int, dict[str, bytes]] = {}
    position, key = -1, None
    try:
        with tarfile.open(path, mode="r|") as tar:
            for member in tar:
                sample_key, _, extension = member.name.partition(".")
                if sample_key != key:
                    key, position = sample_key, position + 1
                    if position > max(positions):
                        break
                if position in positions and extension in ("jpg", "txt", "json"):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found.setdefault(position, {"__key__": sample_key.encode()})[extension] = handle.read()
    except (OSError, tarfile.TarError) as error:
        raise TolError(f"shard {path} cannot be read for the contact sheet: {error}") from None
    return found


def contact_sheet(out_dir: Path, shards: Sequence[ShardRow], count: int, seed: int) -> list[ContactSample]:
    """Draw `count` samples of the written `shards` (in `out_dir`) with `seed` and read them back."""
    drawn = draw(shards, count, seed)
    by_shard: dict[int, set[int]] = {}
    for index, position in drawn:
        by_shard.setdefault(index, set()).add(position)
    samples = []
    for index, positions in sorted(by_shard.items()):
        path = out_dir / shards[index].path
        members = _read_samples(path, positions)
        for position in sorted(positions):
            sample = members.get(position)
            if sample is None or "jpg" not in sample:
                raise TolError(f"shard {path} has no sample at position {position} (its manifest says "
                               f"{shards[index].n_samples}): run tol shards verify")
            record = json.loads(sample.get("json", b"{}"))
            samples.append(ContactSample(shards[index].path, position, sample["__key__"].decode(),
                                         sample.get("txt", b"").decode("utf-8"), str(record.get("license", "")),
                                         thumbnail(sample["jpg"])))
    return samples

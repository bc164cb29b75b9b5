"""The files next to a finished plan's tars that readers look for, so the plan's folder is a dataset by itself.

| file | read by |
|---|---|
| `sizes.json` | open_clip / BioCLIP training (shard basename → samples: the epoch size) |
| `__len__` | open_clip / BioCLIP when `sizes.json` is absent (the plan's sample count) |
| `shardindex.json` | wids (`ShardListDataset`): every shard's url, samples, bytes and md5 |
| `README.md` | Hugging Face `datasets`: a dataset card whose `dataset_info` gives every feature's type, so
|   | `load_dataset(folder)` infers nothing from the first samples |

Each shard's DALI `.idx` is written with the shard itself (etl/write/worker.py). Everything here is made from
the shards' manifests (`shards` rows) and the plan, never by reading the tars.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from etl import naming
from etl.atomic import atomic_write
from etl.write.tar import JSON_SCHEMA, caption_extension

SIDECARS = ("sizes.json", "__len__", "shardindex.json", "README.md")
# Only `tol report`'s dataset card has this YAML key (etl/report/card.py writes it from this constant).
REPORT_CARD_KEY = "pretty_name"


class ShardManifest(Protocol):
    """What a sidecar needs of one written shard."""

    @property
    def path(self) -> str: ...
    @property
    def n_samples(self) -> int | None: ...
    @property
    def n_bytes(self) -> int | None: ...
    @property
    def md5(self) -> str | None: ...


class PlanFacts(Protocol):
    """What a sidecar needs of the plan."""

    @property
    def name(self) -> str: ...
    @property
    def split(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def txt_field(self) -> str: ...
    @property
    def caption_case(self) -> str: ...


def sizes(shards: Sequence[ShardManifest]) -> dict[str, int]:
    """`sizes.json`: each shard's basename → its sample count (what open_clip's `get_dataset_size` sums)."""
    return {Path(shard.path).name: int(shard.n_samples or 0) for shard in shards}


def shard_index(plan: PlanFacts, shards: Sequence[ShardManifest]) -> dict[str, object]:
    """wids' `shardindex.json` (format `wids-shard-index-v1`; urls relative to the file)."""
    return {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": plan.name,
            "shardlist": [{"url": shard.path, "nsamples": shard.n_samples, "filesize": shard.n_bytes,
                           "md5sum": shard.md5} for shard in shards]}


def _feature_lines(name: str, kind: str, indent: str) -> list[str]:
    if kind == "string":
        return [f"{indent}- name: {name}", f"{indent}  dtype: string"]
    if kind == "list[int64]":
        return [f"{indent}- name: {name}", f"{indent}  sequence: int64"]
    raise ValueError(f"no Hugging Face feature for {kind!r}")


def member_names(plan: PlanFacts) -> list[str]:
    """Every member extension of a sample of this plan, sorted as in the tar."""
    captions = [caption_extension(field, plan.caption_case) for field in naming.CAPTION_FIELDS]
    return sorted([*captions, "jpg", "json", "txt"])


def dataset_card(plan: PlanFacts, shards: Sequence[ShardManifest]) -> str:
    """A Hugging Face dataset card (`README.md`): features with their types, the split and its size."""
    total = sum(sizes(shards).values())
    nbytes = sum(int(shard.n_bytes or 0) for shard in shards)
    lines = ["---", "configs:", "- config_name: default", "  data_files:", f"  - split: {plan.split}",
             "    path: shard-*.tar", "dataset_info:", "  features:",
             "  - name: __key__", "    dtype: string", "  - name: __url__", "    dtype: string"]
    for member in member_names(plan):
        if member == "jpg":
            lines += ["  - name: jpg", "    dtype: image"]
        elif member == "json":
            lines += ["  - name: json", "    struct:"]
            for field, kind in sorted(JSON_SCHEMA.items()):
                lines += _feature_lines(field, kind, "    ")
        else:
            lines += _feature_lines(member, "string", "  ")
    lines += ["  splits:", f"  - name: {plan.split}", f"    num_bytes: {nbytes}", f"    num_examples: {total}",
              f"  dataset_size: {nbytes}", "---", "",
              f"# {plan.name}", "",
              f"{total:,} samples of the `{plan.split}` split in {len(shards)} WebDataset shards, images "
              f"{plan.width}x{plan.height} JPEG. Each sample's members: "
              + ", ".join(f"`{member}`" for member in member_names(plan)) + f". `txt` is a copy of "
              f"`{caption_extension(plan.txt_field + '.txt', plan.caption_case)}`.", "",
              "The `json` member has the same keys with the same types in every sample: source identities are "
              "strings, empty when the image comes from another source; `class_index` is seven integers "
              "(kingdom to species).", "",
              "Next to the shards: `sizes.json` and `__len__` (open_clip), `shardindex.json` (wids), one `.idx` "
              "per shard (DALI).", ""]
    return "\n".join(lines)


def is_report_card(path: Path) -> bool:
    """Whether `path` is the dataset card `tol report` wrote (its YAML header has `REPORT_CARD_KEY`): a fuller
    card than the sidecars' own, which they must not replace."""
    try:
        with path.open(encoding="utf-8") as handle:
            head = handle.read(1 << 16)
    except (OSError, UnicodeDecodeError):
        return False
    if not head.startswith("---\n"):
        return False
    header = head[4:].split("\n---", 1)[0]
    return any(line.startswith(f"{REPORT_CARD_KEY}:") for line in header.splitlines())


def write_sidecars(out_dir: Path, plan: PlanFacts, shards: Sequence[ShardManifest]) -> list[Path]:
    """Write every sidecar of a finished plan into its folder (each atomically); returns their paths. A dataset
    card `tol report` wrote is left as it is (`tol report` refreshes it), so it is not among them."""
    total = sum(sizes(shards).values())
    contents = {
        "sizes.json": json.dumps(sizes(shards), indent=1, sort_keys=True) + "\n",
        "__len__": f"{total}\n",
        "shardindex.json": json.dumps(shard_index(plan, shards), indent=1) + "\n",
        "README.md": dataset_card(plan, shards),
    }
    written = []
    for name in SIDECARS:
        target = out_dir / name
        if name == "README.md" and is_report_card(target):
            continue
        with atomic_write(target, "w", encoding="utf-8") as handle:
            handle.write(contents[name])
        written.append(target)
    return written

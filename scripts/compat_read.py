"""Read one plan's folder with one real reader and compare with the exported catalog (run by scripts/compat).

Runs inside each reader's own virtual environment, so it imports nothing of `etl`: only the standard library
and the reader under test. Usage: compat_read.py PART PLAN_DIR CATALOG_CSV. Prints one line; exits 1 on a
mismatch.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from pathlib import Path


def catalog(path: Path) -> dict[tuple[str, int], str]:
    """(shard basename, position) → treeoflife_id, from the export."""
    with open(path, encoding="utf-8") as handle:
        return {(Path(row["shard"]).name, int(row["position"])): row["treeoflife_id"] for row in csv.DictReader(handle)}


def shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("shard-*.tar"))


def brace_pattern(folder: Path) -> str:
    names = shards(folder)
    first, last = names[0].stem.split("-")[1], names[-1].stem.split("-")[1]
    return str(folder / f"shard-{{{first}..{last}}}.tar")


def read_webdataset(folder: Path) -> dict[tuple[str, int], str]:
    import webdataset as wds

    seen: dict[tuple[str, int], str] = {}
    counts: dict[str, int] = {}
    member_sets = set()
    for sample in wds.WebDataset(brace_pattern(folder), shardshuffle=False):
        name = Path(sample["__url__"]).name
        position = counts.get(name, 0)
        counts[name] = position + 1
        record = json.loads(sample["json"])
        assert record["treeoflife_id"] == sample["__key__"]
        assert sample["txt"].decode("utf-8").startswith("a photo of ")
        member_sets.add(tuple(sorted(k for k in sample if not k.startswith("__"))))
        seen[(name, position)] = sample["__key__"]
    assert len(member_sets) == 1, member_sets
    return seen


def read_wids(folder: Path) -> dict[tuple[str, int], str]:
    import wids

    dataset = wids.ShardListDataset(str(folder / "shardindex.json"), transformations=[])
    seen = {}
    for index in range(len(dataset)):
        sample = dataset[index]
        seen[(Path(sample["__shard__"]).name, sample["__shardindex__"])] = sample["__key__"]
    return seen


def read_hf(folder: Path) -> dict[tuple[str, int], str]:
    from datasets import load_dataset

    tars = [str(p) for p in shards(folder)]
    card = load_dataset(str(folder))
    split = next(iter(card))
    expected = None
    for order in itertools.permutations(tars):
        loaded = load_dataset("webdataset", data_files={split: list(order)})[split]
        keys = sorted(loaded["__key__"])
        assert expected is None or keys == expected, "another shard order gave other samples"
        expected = keys
        assert str(loaded.features["json"]["eol_content_id"].dtype) == "string", loaded.features["json"]
    from_card = card[split]
    assert sorted(from_card["__key__"]) == expected
    seen, counts = {}, {}
    for key, url in zip(from_card["__key__"], from_card["__url__"], strict=True):
        name = Path(url).name
        counts[name] = counts.get(name, -1) + 1
        seen[(name, counts[name])] = key
    return seen


def read_dali(folder: Path) -> dict[tuple[str, int], str]:
    from nvidia.dali import fn, pipeline_def

    seen = {}
    for tar in shards(folder):
        @pipeline_def(batch_size=1, num_threads=1, device_id=None)
        def pipe(tar=tar):
            jpg, record = fn.readers.webdataset(paths=[str(tar)], index_paths=[str(tar.with_suffix(".idx"))],
                                                ext=["jpg", "json"], missing_component_behavior="error",
                                                random_shuffle=False, name="reader")
            return fn.decoders.image(jpg, device="cpu"), record

        built = pipe()
        built.build()
        total = built.epoch_size("reader")
        for position in range(total):
            _image, record = built.run()
            key = json.loads(bytes(record.at(0)).decode("utf-8"))["treeoflife_id"]
            seen[(tar.name, position)] = key
    return seen


def read_open_clip(folder: Path) -> dict[tuple[str, int], str]:
    """open_clip's own training loader, with no --train-num-samples: it must find the size in sizes.json."""
    from types import SimpleNamespace

    import open_clip
    from open_clip_train.data import get_wds_dataset

    args = SimpleNamespace(train_data=brace_pattern(folder), train_num_samples=None, val_num_samples=None,
                           dataset_resampled=False, train_data_upsampling_factors=None, seed=0, batch_size=1,
                           workers=1, world_size=1, rank=0, distributed=False)
    preprocess = open_clip.image_transform(64, is_train=True)
    data = get_wds_dataset(args, preprocess, is_train=True, epoch=0, tokenizer=open_clip.get_tokenizer("RN50"))
    batches = sum(1 for _ in data.dataloader)
    sizes = json.loads((folder / "sizes.json").read_text())
    assert data.dataloader.num_samples == sum(sizes.values()) == batches, (data.dataloader.num_samples, batches)
    return {}


def read_energon(folder: Path) -> dict[tuple[str, int], str]:
    """megatron-energon: `energon prepare` with the README's command, then every sample through energon's own
    loader (a validation pass: one epoch, no shuffle, one sample a batch)."""
    import subprocess

    from megatron.energon import WorkerConfig, get_loader, get_val_dataset

    if not (folder / ".nv-meta").exists():  # prepared once: energon refuses to prepare a folder again
        prepare = subprocess.run([str(Path(sys.executable).parent / "energon"), "prepare", str(folder),
                                  "--non-interactive", "--split-parts", r"train:shard-.*\.tar",
                                  "--sample-type", "CaptioningSample",
                                  "--field-map", '{"image": "jpg", "caption": "txt"}'], capture_output=True, text=True)
        assert prepare.returncode == 0, prepare.stdout[-2000:] + prepare.stderr[-2000:]
    dataset = get_val_dataset(str(folder), split_part="train", batch_size=1,
                              worker_config=WorkerConfig(rank=0, world_size=1, num_workers=0))
    seen, counts = {}, {}
    for batch in get_loader(dataset):
        # The key is the tar's key alone; the shard is named by the sample's source (one per batch entry).
        (source,) = batch.__sources__[0]
        name, key = source.shard_name, batch.__key__[0]
        assert source.file_names == (f"{key}.jpg", f"{key}.txt"), source.file_names
        assert batch.caption[0].startswith("a photo of "), batch.caption
        assert batch.image.shape[-3] == 3, batch.image.shape  # decoded to RGB by energon
        counts[name] = counts.get(name, -1) + 1
        seen[(name, counts[name])] = key
    return seen


READERS = {"webdataset": read_webdataset, "wids": read_wids, "hf": read_hf, "dali": read_dali,
           "open_clip": read_open_clip, "energon": read_energon}


def main() -> int:
    part, folder, catalog_path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    expected = catalog(catalog_path)
    seen = READERS[part](folder)
    if part == "open_clip":
        print(f"{part} {folder.name}: read an epoch of {len(expected)} samples, size from sizes.json")
        return 0
    if seen != expected:
        missing, extra = set(expected.items()) - set(seen.items()), set(seen.items()) - set(expected.items())
        print(f"{part} {folder.name}: MISMATCH, {len(missing)} catalog rows not read as such, {len(extra)} extra "
              f"(e.g. {sorted(missing)[:1]} vs {sorted(extra)[:1]})")
        return 1
    print(f"{part} {folder.name}: {len(seen)} samples, keys and positions agree with the catalog")
    return 0


if __name__ == "__main__":
    sys.exit(main())
